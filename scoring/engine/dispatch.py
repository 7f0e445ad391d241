"""Turning recorded tasks into broker messages, one per (call, scorer) pair, each with its scorer
family's time limit, sent in batches (scoring.engine.broker.enqueue_many) as each job's dispatch
window allows (scoring.engine.window)."""

import logging

from django.utils import timezone

from scoring.engine import window
from scoring.engine.broker import enqueue_many, get_actor
from scoring.engine.states import Status
from scoring.models import ScoringTask
from scoring.scorers.base import time_limit

logger = logging.getLogger(__name__)

SCORE_TASK = window.SCORE_TASK
DISPATCH_JOB = "dispatch_job"


def tasks_send(*, tasks, delay_ms: int | None = None) -> int:
    """Send one score_task message per task of the queryset; returns how many were sent."""
    rows = tasks.values_list("pk", "scorer__leaf_object_class").iterator(chunk_size=5_000)
    extra = {} if delay_ms is None else {"delay": delay_ms}
    items = (((pk,), {"time_limit": int(1000 * time_limit(cls)), **extra}) for pk, cls in rows)
    return enqueue_many(get_actor(SCORE_TASK), items)


def job_dispatch(*, job_id) -> None:
    """Hand a committed job to the workers (one dispatch message, whose actor fans it out). If the
    broker is unreachable the job stays recorded with its tasks queued, for the reconciler."""
    try:
        get_actor(DISPATCH_JOB).send(str(job_id))
    except Exception:
        logger.exception("Could not dispatch scoring job %s; its tasks stay queued", job_id)


def job_enqueue_tasks(*, job_id) -> int:
    """Open the job's dispatch window (its pending tasks get messages as the window allows), and
    send a message for each queued task of the job that never had one (tasks recorded queued, not
    pending, bypass the window); returns how many were sent. Sending twice is harmless: a task is
    claimed once."""
    now = timezone.now()
    unsent = ScoringTask.objects.filter(job_id=job_id, status=Status.QUEUED, dispatched_at__isnull=True)
    ids = list(unsent.values_list("pk", flat=True))
    if ids:
        ScoringTask.objects.filter(pk__in=ids).update(dispatched_at=now)
    sent = tasks_send(tasks=ScoringTask.objects.filter(pk__in=ids)) if ids else 0
    return sent + window.windows_refill(wait=True)


def task_send_later(*, task_id: int, delay_seconds: float) -> None:
    """Send the task's next attempt after a delay (its retry or its next look at a running call)."""
    tasks_send(tasks=ScoringTask.objects.filter(pk=task_id), delay_ms=int(delay_seconds * 1000))
