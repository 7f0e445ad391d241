"""Turning recorded tasks into broker messages, one per (call, scorer) pair, sent in pipelined
batches so that fanning out a job costs one round trip per thousand messages."""

from uuid import uuid4

from dramatiq.common import current_millis

from scoring.models import ScoringTask
from scoring.scorers.base import time_limit

PIPELINE_BATCH = 1_000


def enqueue_many(actor, items, *, batch: int = PIPELINE_BATCH) -> int:
    """Send `actor` one message per item, each an (args, options) pair; returns how many.

    On Redis the messages go through the broker's own dispatch script in pipelines, with the
    broker middleware's enqueue hooks run for each; other brokers send one by one."""
    broker = actor.broker
    scripts = getattr(broker, "scripts", None)
    if scripts is None:
        count = 0
        for args, options in items:
            actor.send_with_options(args=args, **options)
            count += 1
        return count

    dispatch, count, pending = scripts["dispatch"], 0, []
    pipe = broker.client.pipeline(transaction=False)

    def flush():
        pipe.execute()
        for message in pending:
            broker.emit_after("enqueue", message, None)
        pending.clear()

    for args, options in items:
        message = actor.message_with_options(args=args, **options)
        message = message.copy(options={"redis_message_id": str(uuid4())})
        broker.emit_before("enqueue", message, None)
        dispatch(
            keys=[broker.namespace],
            args=[
                "enqueue",
                current_millis(),
                message.queue_name,
                broker.broker_id,
                broker.heartbeat_timeout,
                broker.dead_message_ttl,
                0,
                broker._max_unpack_size(),
                message.options["redis_message_id"],
                message.encode(),
            ],
            client=pipe,
        )
        pending.append(message)
        count += 1
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return count


def tasks_send(*, tasks, send, delay_ms: int | None = None) -> int:
    """Send one message per task of the queryset, each with its scorer family's time limit."""
    rows = tasks.values_list("pk", "scorer__leaf_object_class").iterator(chunk_size=5_000)
    extra = {} if delay_ms is None else {"delay": delay_ms}
    return enqueue_many(send, (((pk,), {"time_limit": int(1000 * time_limit(cls)), **extra}) for pk, cls in rows))


def job_enqueue_tasks(*, job_id, send) -> int:
    """Send a message for each queued task of the job through the actor `send`; returns how
    many were sent. Sending twice is harmless: a task is claimed once."""
    return tasks_send(tasks=ScoringTask.objects.filter(job_id=job_id, status=ScoringTask.Status.QUEUED), send=send)


def task_send_later(*, task_id: int, delay_seconds: float, send) -> None:
    """Send the task's next attempt after a delay (its retry or its next look at a running call)."""
    tasks_send(tasks=ScoringTask.objects.filter(pk=task_id), send=send, delay_ms=int(delay_seconds * 1000))
