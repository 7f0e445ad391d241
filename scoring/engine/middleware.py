"""Dramatiq middleware for worker processes: a housekeeping thread that beats, renews the leases
of the tasks the process holds, reconciles and trims the heap on a schedule, the monitors' matcher
thread, and the group committer's look-ahead at the messages the process has fetched."""

import logging
import threading
from functools import partial

from django import db
from django.conf import settings
from dramatiq.middleware import Middleware

logger = logging.getLogger(__name__)


class WorkerHousekeeping(Middleware):
    """Starts one housekeeping thread per worker process; it stops with the worker."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._monitors = None

    def before_worker_boot(self, broker, worker):
        from scoring.engine.broker import consumer_idle_timeout

        consumer_idle_timeout(worker, settings.SCORING_WORKER_IDLE_MS)

    def after_worker_boot(self, broker, worker):
        from scoring.engine.batch import group_committer
        from scoring.engine.broker import fetched_args, get_actor
        from scoring.engine.dispatch import SCORE_TASK

        group_committer().look_ahead = partial(fetched_args, worker, get_actor(SCORE_TASK))
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(broker,), name="scoring-housekeeping", daemon=True)
        self._thread.start()
        from scoring.engine.monitors import MonitorConsumer

        self._monitors = MonitorConsumer()
        self._monitors.start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()
        if self._monitors is not None:
            self._monitors.stop()

    def _loop(self, broker):
        from scoring import metrics
        from scoring.engine.broker import heartbeat
        from scoring.engine.leases import leases_renew
        from scoring.engine.memory import heap_trim
        from scoring.engine.reconcile import reconcile_once_per_interval
        from scoring.engine.window import refiller

        every = settings.SCORING_HEARTBEAT_SECONDS
        reconcile_every = settings.SCORING_RECONCILE_SECONDS
        since_reconcile = reconcile_every  # reconcile soon after boot: a restart is when it matters
        trim_every, since_trim = settings.SCORING_WORKER_TRIM_SECONDS, 0.0
        metrics.worker_exporter_ensure()
        while not self._stop.wait(every):
            try:
                since_trim += every
                if trim_every and since_trim >= trim_every:  # first: it needs neither broker nor database
                    since_trim = 0
                    heap_trim()
                metrics.worker_exporter_ensure()
                heartbeat(broker)
                leases_renew()
                refiller.poke(force=True)  # a refill whose poke was lost (or failed) is not lost for long
                since_reconcile += every
                if since_reconcile >= reconcile_every:
                    since_reconcile = 0
                    reconcile_once_per_interval(broker, reconcile_every)
            except Exception:
                logger.exception("Worker housekeeping failed; trying again in %ss", every)
            finally:
                db.close_old_connections()
