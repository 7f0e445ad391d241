"""Leases on running tasks: a worker process renews the leases of the tasks it holds, so that a
task whose worker died (its lease not renewed) can be taken over within seconds, while a slow
scorer that is alive keeps its task however long it waits."""

import threading
from functools import reduce
from operator import or_

from django.utils import timezone

from scoring.engine import states
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
    condition = reduce(or_, (states.held(task_id, attempts) for task_id, attempts in held))
    return ScoringTask.objects.filter(condition).update(lease_expires_at=states.lease_until(timezone.now()))
