"""Dramatiq actors: thin, they take ids and call the engine. Every message may be delivered more
than once; the engine makes that harmless."""

import dramatiq
import redis
from django.db import Error as DatabaseError
from dramatiq.errors import BrokerError
from dramatiq.middleware import TimeLimitExceeded

from scoring import logs
from scoring.engine import dispatch, run, window
from scoring.engine.broker import QUEUE

REDELIVERIES = 10


def _infrastructure_failed(retries: int, exc: BaseException) -> bool:
    # One retry mechanism for scoring attempts: the engine's, counted on the task
    # (SCORING_MAX_ATTEMPTS, backoff in run.retry_delay, sent by dispatch.task_send_later), so that
    # every attempt is in the audit trail with its error. No scorer error reaches Dramatiq. It only
    # redelivers a message whose handler could not reach the database or the broker, so nothing
    # was recorded; anything else (a bug) is left to the reconciler rather than retried blindly.
    return retries < REDELIVERIES and isinstance(exc, DatabaseError | BrokerError | redis.RedisError)


@dramatiq.actor(queue_name=QUEUE, max_retries=20, min_backoff=1_000, max_backoff=60_000)
def dispatch_job(job_id: str) -> None:
    """Enqueue one score_task message per queued task of a job."""
    dispatch.job_enqueue_tasks(job_id=job_id)


@dramatiq.actor(
    queue_name=QUEUE, retry_when=_infrastructure_failed, min_backoff=1_000, max_backoff=300_000, time_limit=600_000
)
def score_task(task_id: int) -> None:
    """Score one (call, scorer) pair; a transient failure schedules the next attempt."""
    with logs.task_context(task_id=task_id):
        try:
            result = run.task_process(task_id=task_id)
        except TimeLimitExceeded:
            result = run.task_timed_out(task_id=task_id)
        if result is not None and result.retry_in is not None:
            dispatch.task_send_later(task_id=task_id, delay_seconds=result.retry_in)
        else:
            window.refiller.poke()  # one message fewer in the job's window


@dramatiq.actor(queue_name=QUEUE)
def ping() -> None:
    """Does nothing: the baseline of the queue's own speed in benchmarks."""
