"""Projects: parsing `entity/name`, the project rule, and reading a project a user may see."""

from dataclasses import dataclass

from django.db.models import Count, Q

from scoring.errors import PermissionDenied, RequestValidationError, error
from scoring.models import Call, Feedback, Project

NAME_MAX = Project._meta.get_field("name").max_length


def project_id_parse(project_id: str, *, loc=("body", "project_id")) -> tuple[str, str]:
    """Split `entity/name`; a malformed id is a 422 at `loc`."""
    entity, sep, name = project_id.partition("/")
    if not sep or not entity or not name or "/" in name:
        raise RequestValidationError([error(loc, "Project id must look like '<entity>/<project>'", "value_error")])
    if len(entity) > NAME_MAX or len(name) > NAME_MAX or "\x00" in project_id:
        raise RequestValidationError(
            [error(loc, f"Entity and project names are at most {NAME_MAX} characters, without NUL", "value_error")]
        )
    return entity, name


def user_may_access(user, entity: str) -> bool:
    """The project rule: E/P belongs to user E, to members of group E, and to superusers."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser or user.get_username() == entity:
        return True
    return user.groups.filter(name=entity).exists()


def project_check(*, user, project_id: str, loc=("body", "project_id")) -> tuple[str, str]:
    """(entity, name) of a project the user may act on; PermissionDenied otherwise."""
    entity, name = project_id_parse(project_id, loc=loc)
    if not user_may_access(user, entity):
        raise PermissionDenied(f"You do not have access to project {project_id!r}.")
    return entity, name


def project_for_read(*, user, project_id: str, loc=("body", "project_id")) -> Project | None:
    """The project if it exists and the user may read it (None if it does not exist yet)."""
    entity, name = project_check(user=user, project_id=project_id, loc=loc)
    return Project.objects.filter(entity=entity, name=name).first()


@dataclass(frozen=True)
class ProjectSummary:
    project: Project
    calls: int
    scores: int
    running_jobs: int


def projects_for_user(*, user) -> list[ProjectSummary]:
    """The projects the user may see under the project rule, with counts of calls, scores and
    unfinished jobs."""
    if not user or not user.is_authenticated or not user.is_active:
        return []
    projects = (
        Project.objects.filter(projects_visible_q(user))
        .order_by("entity", "name")
        .annotate(running_jobs=Count("scoring_jobs", filter=Q(scoring_jobs__finished_at__isnull=True), distinct=True))
    )
    summaries = []
    for project in projects[:200]:
        # Separate counts: joining calls and feedback in one query would multiply the rows.
        summaries.append(
            ProjectSummary(
                project=project,
                calls=Call.objects.filter(project=project, deleted_at__isnull=True).count(),
                scores=Feedback.objects.filter(project=project, feedback_type__startswith="wandb.runnable.").count(),
                running_jobs=project.running_jobs,
            )
        )
    return summaries


def project_for_page(*, user, entity: str, name: str) -> Project | None:
    """The project, if it exists and the user may see it; None otherwise, so that pages answer 404
    alike for a project that does not exist and one of somebody else."""
    if not user_may_access(user, entity):
        return None
    return Project.objects.filter(entity=entity, name=name).first()


def projects_visible_q(user, prefix: str = "") -> Q:
    """The project rule as a filter on a queryset whose project is reached by `prefix`
    (`"project__"` for a job, `"job__project__"` for a task, `""` for projects themselves)."""
    if user.is_superuser:
        return Q()
    if not user.is_authenticated or not user.is_active:
        return Q(pk__in=[])
    entities = [user.get_username(), *user.groups.values_list("name", flat=True)]
    return Q(**{f"{prefix}entity__in": entities})
