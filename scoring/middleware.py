"""Dramatiq middleware for worker processes: renews the leases of the tasks a process holds, and
runs the reconciler on a schedule (one process at a time across the fleet, by a Redis lock)."""

import logging
import threading

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
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(broker,), name="scoring-housekeeping", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()

    def _loop(self, broker):
        from scoring.services.leases import leases_renew
        from scoring.services.reconcile import worker_heartbeat

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
        from scoring.services.reconcile import reconcile

        client = getattr(broker, "client", None)
        if client is not None and not client.set(RECONCILE_LOCK, "1", nx=True, ex=max(int(interval) - 1, 1)):
            return  # another process reconciled within this interval
        reconcile()
