"""The reconciler: the database is the source of truth and the broker may forget (Redis restarted
empty, a send that failed after commit, a worker killed mid-task). It compares the unfinished
tasks with the messages the broker holds and enqueues again every task that nothing will run."""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import dramatiq
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from dramatiq.common import dq_name

from scoring.engine.dispatch import tasks_send
from scoring.models import ScoringTask
from scoring.services.jobs import jobs_finish_unstamped

logger = logging.getLogger(__name__)

Status = ScoringTask.Status


@dataclass(frozen=True)
class BrokerView:
    """What the broker holds: task ids with a pending message, and jobs not yet fanned out.
    `complete` is False when the broker cannot be inspected (RabbitMQ keeps its messages
    durably, so only abandoned and overdue tasks are re-enqueued there)."""

    task_ids: frozenset[int]
    job_ids: frozenset[str]
    complete: bool


def broker_view(broker=None, *, queue: str = "scoring") -> BrokerView:
    broker = broker or dramatiq.get_broker()
    client = getattr(broker, "client", None)
    if client is None:
        return BrokerView(frozenset(), frozenset(), complete=False)
    task_ids: set[int] = set()
    job_ids: set[str] = set()
    # Queued, delayed and fetched-but-unacknowledged messages all keep their body in these hashes.
    for key in (f"{broker.namespace}:{queue}.msgs", f"{broker.namespace}:{dq_name(queue)}.msgs"):
        for _, raw in client.hscan_iter(key, count=2_000):
            try:
                message = dramatiq.Message.decode(raw)
            except Exception:
                continue
            if message.actor_name == "score_task" and message.args:
                task_ids.add(int(message.args[0]))
            elif message.actor_name == "dispatch_job" and message.args:
                job_ids.add(str(message.args[0]))
    return BrokerView(frozenset(task_ids), frozenset(job_ids), complete=True)


def tasks_orphaned(view: BrokerView, *, grace_seconds: float | None = None) -> list[int]:
    """Unfinished tasks that no message and no live worker will run."""
    grace = timedelta(seconds=settings.SCORING_RECONCILE_GRACE_SECONDS if grace_seconds is None else grace_seconds)
    now = timezone.now()
    abandoned = Q(status=Status.RUNNING, lease_expires_at__lt=now)
    overdue = Q(status=Status.WAITING, retry_at__lt=now - grace)
    candidates = abandoned | overdue
    if view.complete:
        # A queued task of a job committed a moment ago may still be on its way to the broker.
        candidates |= Q(status=Status.QUEUED, job__created_at__lt=now - grace)
    rows = ScoringTask.objects.filter(candidates).values_list("pk", "job_id", "status")
    orphaned = []
    for task_id, job_id, status in rows.iterator(chunk_size=5_000):
        if task_id in view.task_ids and status != Status.RUNNING:
            continue
        if status == Status.QUEUED and str(job_id) in view.job_ids:
            continue  # its dispatch message will enqueue it
        orphaned.append(task_id)
    return orphaned


def worker_heartbeat(broker=None) -> None:
    """Mark this worker process alive in the Redis broker's heartbeat set. Dramatiq only beats
    when a consumer fetches or acknowledges, so a process busy with slow scorers would look dead."""
    broker = broker or dramatiq.get_broker()
    client = getattr(broker, "client", None)
    if client is not None:
        client.zadd(f"{broker.namespace}:__heartbeats__", {broker.broker_id: int(time.time() * 1000)})


def requeue_dead_workers(broker=None, *, queue: str = "scoring") -> None:
    """Give the messages held by dead workers back to their queues now. Dramatiq's Redis broker
    does this only in maintenance it runs at random, after a minute without heartbeat; this runs
    that same maintenance (its own script) with our shorter timeout, which is safe because live
    workers beat every few seconds (worker_heartbeat)."""
    broker = broker or dramatiq.get_broker()
    if getattr(broker, "client", None) is None:
        return
    timeout_ms = int(settings.SCORING_DEAD_WORKER_SECONDS * 1000)
    dispatch = broker.scripts["dispatch"]
    for queue_name in (queue, dq_name(queue)):
        args = ["qsize", int(time.time() * 1000), queue_name, broker.broker_id, timeout_ms]
        args += [broker.dead_message_ttl, 1, broker._max_unpack_size()]
        dispatch(keys=[broker.namespace], args=args)


def reconcile(*, send=None, grace_seconds: float | None = None) -> int:
    """Enqueue again every task nothing will run, and stamp the jobs whose tasks are all done but
    that are not marked finished; returns how many tasks were enqueued. Safe to run anywhere, at any
    time, as often as wanted: a task is claimed at most once per attempt."""
    if send is None:
        from scoring.engine.actors import score_task as send
    requeue_dead_workers(send.broker)
    orphaned = tasks_orphaned(broker_view(send.broker), grace_seconds=grace_seconds)
    for start in range(0, len(orphaned), 10_000):
        tasks_send(tasks=ScoringTask.objects.filter(pk__in=orphaned[start : start + 10_000]), send=send)
    if orphaned:
        logger.info("Reconciler enqueued %d task(s) again", len(orphaned))
    if stamped := jobs_finish_unstamped():
        logger.info("Reconciler stamped %d finished job(s)", stamped)
    return len(orphaned)
