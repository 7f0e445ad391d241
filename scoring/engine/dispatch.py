"""Turning recorded tasks into broker messages, one per (call, scorer) pair, sent in batches so that
fanning out a job costs one round trip per thousand messages."""

from collections import defaultdict

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name
from dramatiq.message import generate_unique_id
from dramatiq.middleware import Middleware

from scoring.models import ScoringTask
from scoring.scorers.base import time_limit

PIPELINE_BATCH = 1_000


def enqueue_many(actor, items, *, batch: int = PIPELINE_BATCH) -> int:
    """Send `actor` one message per item, each an (args, options) pair, where the option `delay`
    (milliseconds) holds a message back; returns how many were sent.

    On Redis a batch is one MULTI/EXEC of an HSET of the message bodies and an RPUSH of their ids
    per queue, which is what the broker's enqueue script does one message at a time; the message
    ids, the delay queue and the broker middleware's enqueue hooks are those of
    `RedisBroker.enqueue` (hooks no middleware implements are not called). Other brokers send one
    by one."""
    broker = actor.broker
    if not isinstance(broker, RedisBroker):
        count = 0
        for args, options in items:
            actor.send_with_options(args=args, **options)
            count += 1
        return count

    count, pending = 0, []
    before, after = _implemented(broker, "before_enqueue"), _implemented(broker, "after_enqueue")

    def flush():
        bodies = defaultdict(dict)
        for message, _ in pending:
            bodies[message.queue_name][message.options["redis_message_id"]] = message.encode()
        with broker.client.pipeline(transaction=True) as pipe:
            for queue_name, queued in bodies.items():
                pipe.hset(f"{broker.namespace}:{queue_name}.msgs", mapping=queued)
                pipe.rpush(f"{broker.namespace}:{queue_name}", *queued)
            pipe.execute()
        if after:
            for message, delay in pending:
                broker.emit_after("enqueue", message, delay)
        pending.clear()

    for args, options in items:
        options = dict(options)
        delay = options.pop("delay", None)
        # Each enqueued message has an id of its own in Redis; a new message's own id is one.
        message_id = generate_unique_id()
        options["redis_message_id"] = message_id
        queue_name = actor.queue_name
        if delay is not None:
            queue_name, options["eta"] = dq_name(queue_name), current_millis() + delay
        message = Message(
            queue_name=queue_name,
            actor_name=actor.actor_name,
            args=args,
            kwargs={},
            options=options,
            message_id=message_id,
        )
        if before:
            broker.emit_before("enqueue", message, delay)
        pending.append((message, delay))
        count += 1
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return count


def _implemented(broker, hook: str) -> bool:
    """Whether any of the broker's middleware does something in `hook`."""
    return any(getattr(type(middleware), hook) is not getattr(Middleware, hook) for middleware in broker.middleware)


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
