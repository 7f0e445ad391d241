"""Turning recorded tasks into broker messages, one per (call, scorer) pair, each with its scorer
family's time limit, sent in batches (scoring.engine.broker.enqueue_many)."""

import logging

from scoring.engine.broker import enqueue_many, get_actor
from scoring.engine.states import Status
from scoring.models import ScoringTask
from scoring.scorers.base import time_limit

logger = logging.getLogger(__name__)

SCORE_TASK = "score_task"
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
    """Send a message for each queued task of the job; returns how many were sent. Sending twice
    is harmless: a task is claimed once."""
    return tasks_send(tasks=ScoringTask.objects.filter(job_id=job_id, status=Status.QUEUED))


def task_send_later(*, task_id: int, delay_seconds: float) -> None:
    """Send the task's next attempt after a delay (its retry or its next look at a running call)."""
    tasks_send(tasks=ScoringTask.objects.filter(pk=task_id), delay_ms=int(delay_seconds * 1000))
