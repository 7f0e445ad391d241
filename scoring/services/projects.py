"""Projects: parsing `entity/name`, and getting one a user may act on."""

from rest_framework.exceptions import PermissionDenied

from scoring.auth import user_may_access
from scoring.errors import RequestValidationError, error
from scoring.models import Project

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


def project_for_write(*, user, project_id: str, loc=("body", "project_id")) -> Project:
    """The project the user may write to, created on first write; 403 when not allowed."""
    entity, name = project_id_parse(project_id, loc=loc)
    if not user_may_access(user, entity):
        raise PermissionDenied(f"You do not have access to project {project_id!r}.")
    project, _ = Project.objects.get_or_create(entity=entity, name=name)
    return project


def project_for_read(*, user, project_id: str, loc=("body", "project_id")) -> Project | None:
    """The project if it exists and the user may read it (None if it does not exist yet)."""
    entity, name = project_id_parse(project_id, loc=loc)
    if not user_may_access(user, entity):
        raise PermissionDenied(f"You do not have access to project {project_id!r}.")
    return Project.objects.filter(entity=entity, name=name).first()
