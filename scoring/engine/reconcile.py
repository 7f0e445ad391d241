"""The reconciler: the database is the source of truth and the broker may forget (Redis restarted
empty, a send that failed after commit, a worker killed mid-task). It compares the unfinished
tasks with the messages the broker holds and enqueues again every task that nothing will run; the
tasks a dispatch window holds back (pending) are the window's, not orphans."""

import logging
from dataclasses import dataclass
from datetime import timedelta

import dramatiq
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from scoring import metrics
from scoring.engine import broker as adapter
from scoring.engine.dispatch import DISPATCH_JOB, SCORE_TASK, tasks_send
from scoring.engine.jobs import jobs_finish_unstamped
from scoring.engine.states import Status
from scoring.engine.window import windows_refill
from scoring.models import ScoringTask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerView:
    """What the broker holds: task ids with a pending message, and jobs not yet fanned out.
    `complete` is False when the broker cannot be inspected (RabbitMQ keeps its messages
    durably, so only abandoned and overdue tasks are re-enqueued there)."""

    task_ids: frozenset[int]
    job_ids: frozenset[str]
    complete: bool


def broker_view(broker=None) -> BrokerView:
    broker = broker or dramatiq.get_broker()
    if not adapter.inspectable(broker):
        return BrokerView(frozenset(), frozenset(), complete=False)
    task_ids: set[int] = set()
    job_ids: set[str] = set()
    for actor_name, args in adapter.held_messages(broker):
        if actor_name == SCORE_TASK and args:
            task_ids.add(int(args[0]))
        elif actor_name == DISPATCH_JOB and args:
            job_ids.add(str(args[0]))
    return BrokerView(frozenset(task_ids), frozenset(job_ids), complete=True)


def tasks_orphaned(view: BrokerView, *, grace_seconds: float | None = None) -> list[int]:
    """Unfinished tasks that no message and no live worker will run."""
    grace = timedelta(seconds=settings.SCORING_RECONCILE_GRACE_SECONDS if grace_seconds is None else grace_seconds)
    now = timezone.now()
    abandoned = Q(status=Status.RUNNING, lease_expires_at__lt=now)
    overdue = Q(status=Status.WAITING, retry_at__lt=now - grace)
    candidates = abandoned | overdue
    if view.complete:
        # A queued task given its message a moment ago may still be on its way to the broker.
        # Pending tasks are never candidates: the dispatch window holds them back on purpose.
        candidates |= Q(status=Status.QUEUED, dispatched_at__lt=now - grace) | Q(
            status=Status.QUEUED, dispatched_at__isnull=True, job__created_at__lt=now - grace
        )
    rows = ScoringTask.objects.filter(candidates).values_list("pk", "job_id", "status")
    orphaned = []
    for task_id, job_id, status in rows.iterator(chunk_size=5_000):
        if task_id in view.task_ids and status != Status.RUNNING:
            continue
        if status == Status.QUEUED and str(job_id) in view.job_ids:
            continue  # its dispatch message will enqueue it
        orphaned.append(task_id)
    return orphaned


def requeue_dead_workers(broker=None) -> None:
    """Give the messages held by workers silent for SCORING_DEAD_WORKER_SECONDS back to the queue."""
    adapter.requeue_dead_workers(
        broker or dramatiq.get_broker(), dead_after_seconds=settings.SCORING_DEAD_WORKER_SECONDS
    )


def reconcile(*, grace_seconds: float | None = None) -> int:
    """Enqueue again every task nothing will run, and stamp the jobs whose tasks are all done but
    that are not marked finished, and refill the dispatch windows; returns how many tasks were
    enqueued. Safe to run anywhere, at any
    time, as often as wanted: a task is claimed at most once per attempt."""
    broker = dramatiq.get_broker()
    requeue_dead_workers(broker)
    orphaned = tasks_orphaned(broker_view(broker), grace_seconds=grace_seconds)
    for start in range(0, len(orphaned), 10_000):
        tasks_send(tasks=ScoringTask.objects.filter(pk__in=orphaned[start : start + 10_000]))
    if orphaned:
        logger.info("Reconciler enqueued %d task(s) again", len(orphaned))
    if stamped := jobs_finish_unstamped():
        logger.info("Reconciler stamped %d finished job(s)", stamped)
    refilled = windows_refill(wait=True)  # a window left empty by a lost refill opens again
    metrics.reconciled(requeued=len(orphaned), stamped=stamped)
    return len(orphaned) + refilled


def reconcile_once_per_interval(broker, interval: float) -> bool:
    """Reconcile unless another worker process did within `interval` seconds (one at a time across
    the fleet, by a lock in Redis); returns whether this process did."""
    if not adapter.lock(broker, "reconcile-lock", seconds=interval - 1):
        logger.debug("Another worker process reconciles this interval (%ss)", interval)
        return False
    logger.debug("Reconciling: this worker process holds the lock for %ss", interval)
    reconcile()
    return True
