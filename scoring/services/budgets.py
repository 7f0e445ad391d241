"""Project budgets: set by the project's admins (its entity's own user, holders of the
`scoring.change_projectbudget` permission with access to it, superusers); providers unblocked by
operators."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from scoring.engine import states
from scoring.engine.dispatch import tasks_send
from scoring.errors import PermissionDenied
from scoring.models import Project, ProjectBudget, ScoringTask
from scoring.scorers import blocks
from scoring.selectors.projects import project_check

UNSET = object()


def _may_administer(user, entity: str) -> bool:
    return user.is_superuser or user.get_username() == entity or user.has_perm("scoring.change_projectbudget")


def budget_set(*, user, project_id: str, daily_usd=UNSET, monthly_usd=UNSET, job_cap_usd=UNSET) -> ProjectBudget:
    """Set the project's budgets (USD; None removes one; a field not given is kept)."""
    entity, name = project_check(user=user, project_id=project_id)
    if not _may_administer(user, entity):
        raise PermissionDenied(f"Only admins of project {project_id!r} may change its budget.")
    with transaction.atomic():
        project, _ = Project.objects.get_or_create(entity=entity, name=name)
        budget, _ = ProjectBudget.objects.select_for_update().get_or_create(project=project)
        for field, value in (("daily_usd", daily_usd), ("monthly_usd", monthly_usd), ("job_cap_usd", job_cap_usd)):
            if value is not UNSET:
                setattr(budget, field, None if value is None else Decimal(str(value)))
        budget.save()
    return budget


def provider_unblock(*, user, name: str) -> int:
    """Lift an operator's block of a provider now and send its waiting tasks at once; returns how
    many were sent. Operators only (staff)."""
    if not (user.is_staff or user.is_superuser):
        raise PermissionDenied("Only operators may unblock a provider.")
    blocks.provider_unblock(name)
    waiting = ScoringTask.objects.filter(status=states.Status.WAITING, error_type=states.PROVIDER_BLOCKED)
    ids = list(waiting.values_list("pk", flat=True))
    if ids:
        ScoringTask.objects.filter(pk__in=ids, status=states.Status.WAITING).update(retry_at=timezone.now())
    return tasks_send(tasks=ScoringTask.objects.filter(pk__in=ids)) if ids else 0
