"""Dramatiq middleware for worker processes: renews the leases of the tasks a process holds, runs
the reconciler on a schedule (one process at a time across the fleet, by a Redis lock), and lets
the group committer look ahead at the messages the process has fetched."""

import logging
import threading
from functools import partial

from django import db
from django.conf import settings
from dramatiq.middleware import Middleware

logger = logging.getLogger(__name__)

RECONCILE_LOCK = "scoring:reconcile-lock"


class WorkerHousekeeping(Middleware):
    """Starts one housekeeping thread per worker process; it stops with the worker."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker):
        from scoring.engine.actors import score_task
        from scoring.engine.batch import group_committer

        group_committer().look_ahead = partial(fetched_task_ids, worker.work_queue, score_task)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(broker,), name="scoring-housekeeping", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()

    def _loop(self, broker):
        from scoring.engine.leases import leases_renew
        from scoring.engine.reconcile import worker_heartbeat

        heartbeat = settings.SCORING_HEARTBEAT_SECONDS
        reconcile_every = settings.SCORING_RECONCILE_SECONDS
        since_reconcile = reconcile_every  # reconcile soon after boot: a restart is when it matters
        while not self._stop.wait(heartbeat):
            try:
                worker_heartbeat(broker)
                leases_renew()
                since_reconcile += heartbeat
                if since_reconcile >= reconcile_every:
                    since_reconcile = 0
                    self._reconcile_once(broker, reconcile_every)
            except Exception:
                logger.exception("Worker housekeeping failed; trying again in %ss", heartbeat)
            finally:
                db.close_old_connections()

    def _reconcile_once(self, broker, interval):
        from scoring.engine.reconcile import reconcile

        client = getattr(broker, "client", None)
        if client is not None and not client.set(RECONCILE_LOCK, "1", nx=True, ex=max(int(interval) - 1, 1)):
            return  # another process reconciled within this interval
        reconcile()


def fetched_task_ids(work_queue, actor) -> list[int]:
    """The task ids of `actor`'s messages that this worker process has fetched but not yet
    started, oldest first: Dramatiq's work queue is a PriorityQueue of items holding a message."""
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
