"""Every Dramatiq and Redis internal the engine relies on, behind one adapter: batched enqueues,
reading the message bodies the broker holds, worker heartbeats, the broker's own maintenance, and
a worker's fetched messages. Dramatiq is pinned (requirements.txt); a change there shows here."""

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator

import dramatiq
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name
from dramatiq.message import generate_unique_id
from dramatiq.middleware import Middleware

QUEUE = "scoring"
PIPELINE_BATCH = 1_000


def get_actor(name: str) -> dramatiq.Actor:
    """One of the engine's actors (scoring.engine.actors, imported when the app is ready), by name:
    the flows that send messages need no import of the module that defines their actors."""
    return dramatiq.get_broker().get_actor(name)


def inspectable(broker) -> bool:
    """Whether the broker's messages can be read back (Redis keeps their bodies in hashes;
    RabbitMQ keeps them durably and shows nothing)."""
    return isinstance(broker, RedisBroker)


def enqueue_many(actor, items: Iterable[tuple[tuple, dict]], *, batch: int = PIPELINE_BATCH) -> int:
    """Send `actor` one message per item, each an (args, options) pair, where the option `delay`
    (milliseconds) holds a message back; returns how many were sent.

    On Redis a batch is one MULTI/EXEC of an HSET of the message bodies and an RPUSH of their ids
    per queue, which is what the broker's enqueue script does one message at a time; the message
    ids, the delay queue and the broker middleware's enqueue hooks are those of
    `RedisBroker.enqueue` (hooks no middleware implements are not called). Other brokers send one
    by one."""
    broker = actor.broker
    if not inspectable(broker):
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


def held_messages(broker, *, queue: str = QUEUE) -> Iterator[tuple[str, list]]:
    """(actor name, args) of every message a Redis broker holds for the queue: queued, delayed,
    and fetched but not yet acknowledged all keep their body in these hashes."""
    for key in (f"{broker.namespace}:{queue}.msgs", f"{broker.namespace}:{dq_name(queue)}.msgs"):
        for _, raw in broker.client.hscan_iter(key, count=2_000):
            try:
                message = Message.decode(raw)
            except Exception:
                continue
            yield message.actor_name, message.args


def heartbeat(broker) -> None:
    """Mark this worker process alive in the Redis broker's heartbeat set. Dramatiq only beats
    when a consumer fetches or acknowledges, so a process busy with slow scorers would look dead."""
    if inspectable(broker):
        broker.client.zadd(f"{broker.namespace}:__heartbeats__", {broker.broker_id: int(time.time() * 1000)})


def requeue_dead_workers(broker, *, dead_after_seconds: float, queue: str = QUEUE) -> None:
    """Give the messages held by dead workers back to their queues now. Dramatiq's Redis broker
    does this only in maintenance it runs at random, after a minute without heartbeat; this runs
    that same maintenance (its own script) with our shorter timeout, which is safe because live
    workers beat every few seconds (`heartbeat`)."""
    if not inspectable(broker):
        return
    dispatch = broker.scripts["dispatch"]
    for queue_name in (queue, dq_name(queue)):
        args = ["qsize", int(time.time() * 1000), queue_name, broker.broker_id, int(dead_after_seconds * 1000)]
        args += [broker.dead_message_ttl, 1, broker._max_unpack_size()]
        dispatch(keys=[broker.namespace], args=args)


def lock(broker, name: str, *, seconds: float) -> bool:
    """Take a fleet-wide lock for `seconds` (Redis); True where the broker has no such store."""
    if not inspectable(broker):
        return True
    return bool(broker.client.set(f"scoring:{name}", "1", nx=True, ex=max(int(seconds), 1)))


def fetched_args(worker, actor) -> list:
    """The first argument of each of `actor`'s messages that this worker process has fetched but
    not yet started, oldest first: Dramatiq's work queue is a PriorityQueue of items holding a
    message."""
    work_queue = worker.work_queue
    with work_queue.mutex:
        items = list(work_queue.queue)
    items.sort()  # by priority, then by when fetched
    return [
        item.message.args[0]
        for item in items
        if item.message.actor_name == actor.actor_name
        and item.message.queue_name == actor.queue_name
        and item.message.args
    ]


def consumer_idle_timeout(worker, milliseconds: int) -> None:
    """Bound how long the worker's consumers sleep between fetches. Dramatiq's Redis consumer backs
    off exponentially up to the worker timeout (1 s) whenever a fetch brings nothing, and also
    whenever its prefetch is full, so a message sent to an idle (or just saturated) process could
    wait up to a second before it is even fetched. Set before the worker boots its consumers."""
    worker.worker_timeout = milliseconds


def _wake_key(broker) -> str:
    return f"{broker.namespace}:scoring-monitors.wake"


def wake_monitors(broker) -> None:
    """Tell one waiting matcher that ended calls are in the outbox (Redis only; elsewhere, and if
    this fails, the matchers' poll finds them). The list is capped: a wake-up is not a message."""
    if not inspectable(broker):
        return
    with broker.client.pipeline(transaction=False) as pipe:
        pipe.lpush(_wake_key(broker), 1)
        pipe.ltrim(_wake_key(broker), 0, 7)
        pipe.execute()


def wait_for_monitors_wake(broker, seconds: float) -> bool:
    """Wait up to `seconds` for a wake_monitors; False if none came (or the broker has no such
    list, after sleeping the whole time)."""
    if not inspectable(broker):
        time.sleep(seconds)
        return False
    return broker.client.blpop([_wake_key(broker)], timeout=seconds) is not None


def queue_depths(broker, *, queue: str = QUEUE) -> dict[tuple[str, str], int]:
    """Messages the broker holds, by (queue, state): on Redis each queue's list (`ready`) and the
    bodies of messages fetched by workers and not yet acknowledged (`unacked`; for the delay queue
    these wait in a worker for their time); on RabbitMQ the ready messages of the queue and its
    delay queue (what a passive look shows)."""
    depths = {}
    if inspectable(broker):
        with broker.client.pipeline(transaction=False) as pipe:
            for name in (queue, dq_name(queue)):
                pipe.llen(f"{broker.namespace}:{name}")
                pipe.hlen(f"{broker.namespace}:{name}.msgs")
            counts = pipe.execute()
        for index, name in enumerate((queue, dq_name(queue))):
            ready, bodies = counts[2 * index], counts[2 * index + 1]
            depths[name, "ready"] = ready
            depths[name, "unacked"] = max(bodies - ready, 0)
        return depths
    ready, delayed, _ = broker.get_queue_message_counts(queue)
    return {(queue, "ready"): ready, (dq_name(queue), "ready"): delayed}
