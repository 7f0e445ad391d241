"""Turning recorded tasks into broker messages, one per (call, scorer) pair, sent in pipelined
batches so that fanning out a job costs one round trip per thousand messages."""

from uuid import uuid4

from dramatiq.common import current_millis

from scoring.models import ScoringTask

PIPELINE_BATCH = 1_000


def enqueue_many(actor, arguments, *, batch: int = PIPELINE_BATCH) -> int:
    """Send `actor` one message per item of `arguments` (each a tuple of args); returns how many.

    On Redis the messages go through the broker's own dispatch script in pipelines, with the
    broker middleware's enqueue hooks run for each; other brokers send one by one."""
    broker = actor.broker
    scripts = getattr(broker, "scripts", None)
    if scripts is None:
        count = 0
        for args in arguments:
            actor.send(*args)
            count += 1
        return count

    dispatch, count, pending = scripts["dispatch"], 0, []
    pipe = broker.client.pipeline(transaction=False)

    def flush():
        pipe.execute()
        for message in pending:
            broker.emit_after("enqueue", message, None)
        pending.clear()

    for args in arguments:
        message = actor.message(*args).copy(options={"redis_message_id": str(uuid4())})
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


def job_enqueue_tasks(*, job_id, send) -> int:
    """Send a message for each queued task of the job through the actor `send`; returns how
    many were sent. Sending twice is harmless: a task is claimed once."""
    task_ids = ScoringTask.objects.filter(job_id=job_id, status=ScoringTask.Status.QUEUED).values_list("pk", flat=True)
    return enqueue_many(send, ((task_id,) for task_id in task_ids.iterator(chunk_size=5_000)))
