"""Leases on running tasks: a worker process renews the leases of the tasks it holds, so that a
task whose worker died (its lease not renewed) can be taken over within seconds, while a slow
scorer that is alive keeps its task however long it waits."""

import threading
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from scoring.models import ScoringTask

_held: dict[int, int] = {}  # task id -> the attempt this process holds
_lock = threading.Lock()


def lease_hold(task_id: int, attempts: int) -> None:
    with _lock:
        _held[task_id] = attempts


def lease_release(task_id: int) -> None:
    with _lock:
        _held.pop(task_id, None)


def leases_renew() -> int:
    """Extend the lease of every task this process is running; returns how many."""
    with _lock:
        held = list(_held.items())
    if not held:
        return 0
    condition = Q()
    for task_id, attempts in held:
        condition |= Q(pk=task_id, attempts=attempts)
    expires = timezone.now() + timedelta(seconds=settings.SCORING_TASK_LEASE_SECONDS)
    return ScoringTask.objects.filter(condition, status=ScoringTask.Status.RUNNING).update(lease_expires_at=expires)
