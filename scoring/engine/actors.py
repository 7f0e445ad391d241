"""Dramatiq actors: thin, they take ids and call services. Every message may be delivered more
than once; the services make that harmless."""

import dramatiq
from dramatiq.middleware import TimeLimitExceeded

from scoring.engine import batch, dispatch
from scoring.engine import run as tasks

QUEUE = "scoring"


@dramatiq.actor(queue_name=QUEUE, max_retries=20, min_backoff=1_000, max_backoff=60_000)
def dispatch_job(job_id: str) -> None:
    """Enqueue one score_task message per queued task of a job."""
    dispatch.job_enqueue_tasks(job_id=job_id, send=score_task)


@dramatiq.actor(queue_name=QUEUE, max_retries=10, min_backoff=1_000, max_backoff=300_000, time_limit=600_000)
def score_task(task_id: int) -> None:
    """Score one (call, scorer) pair; a transient failure schedules the next attempt."""
    try:
        result = batch.task_process(task_id=task_id)
    except TimeLimitExceeded:
        result = tasks.task_timed_out(task_id=task_id)
    if result is not None and result.retry_in is not None:
        dispatch.task_send_later(task_id=task_id, delay_seconds=result.retry_in, send=score_task)


@dramatiq.actor(queue_name=QUEUE)
def ping() -> None:
    """Does nothing: the baseline of the queue's own speed in benchmarks."""
