"""The dispatch window: a job keeps at most its window of messages in the broker (its other tasks
stay pending, with no message), and refills move pending tasks to queued, oldest job first within
a project, with the projects' messages interleaved by weight (weighted round robin)."""

import logging
import threading
import time
from collections import defaultdict

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from scoring.engine import states
from scoring.engine.broker import enqueue_many, get_actor
from scoring.models import ScoringJob, ScoringTask
from scoring.scorers.base import time_limit

logger = logging.getLogger(__name__)

SCORE_TASK = "score_task"
# One refill at a time across the fleet (a PostgreSQL advisory lock; SQLite has one writer anyway).
REFILL_LOCK_KEY = 0x5C0_13
# A process refills at most this often.
REFILL_INTERVAL = 0.05


def project_weight(project_id: str) -> int:
    return max(1, int((settings.SCORING_PROJECT_WEIGHTS or {}).get(project_id, 1)))


def job_window(project_id: str) -> int:
    """Messages one job of the project may have in the broker: the window times the weight."""
    return max(1, settings.SCORING_DISPATCH_WINDOW * project_weight(project_id))


def project_cap(project_id: str) -> int | None:
    """Messages all jobs of the project together may have in the broker (its concurrency cap)."""
    cap = (settings.SCORING_PROJECT_CONCURRENCY or {}).get(project_id)
    return None if cap is None else max(1, int(cap))


def _lock(wait: bool) -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [REFILL_LOCK_KEY])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [REFILL_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def interleave(batches: dict[str, list], weights: dict[str, int]) -> list:
    """Weighted round robin: `weights[p]` items of each project's batch per round, in turn."""
    order, cursors = [], dict.fromkeys(batches, 0)
    while cursors:
        for project in list(cursors):
            start = cursors[project]
            items = batches[project][start : start + weights[project]]
            order.extend(items)
            if start + len(items) >= len(batches[project]):
                del cursors[project]
            else:
                cursors[project] = start + len(items)
    return order


def windows_refill(*, wait: bool = False) -> int:
    """Top up the window of every job that has pending tasks and is at most half full (or empty);
    returns how many messages were sent. With wait=False a refill already running elsewhere
    makes this one return at once: that one sees the same windows."""
    with transaction.atomic():
        if not _lock(wait):
            return 0
        jobs = list(
            ScoringJob.objects.filter(finished_at__isnull=True, dispatch_pending=True)
            .order_by("created_at")
            .values_list("pk", "project__entity", "project__name", "dispatch_cursor")
        )
        if not jobs:
            return 0
        held = dict(
            ScoringTask.objects.filter(job_id__in=[job[0] for job in jobs], status__in=states.IN_WINDOW)
            .values_list("job_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        project_held: dict[str, int] = defaultdict(int)
        for job_id, entity, name, _ in jobs:
            project_held[f"{entity}/{name}"] += held.get(job_id, 0)
        now = timezone.now()
        batches: dict[str, list] = defaultdict(list)
        for job_id, entity, name, cursor in jobs:
            project_id = f"{entity}/{name}"
            window, in_window = job_window(project_id), held.get(job_id, 0)
            room = window - in_window
            cap = project_cap(project_id)
            if cap is not None:
                room = min(room, cap - project_held[project_id])
            # Half empty before it is refilled, so that refills come in batches; an empty window
            # (a new job) is filled at once.
            limit = window if cap is None else min(window, cap)
            if room <= 0 or (in_window and room < limit // 2):
                continue
            sent = _pending_take(job_id, cursor, room, now)
            project_held[project_id] += len(sent)
            batches[project_id].extend(sent)
    messages = interleave(batches, {project: project_weight(project) for project in batches})
    if messages:
        items = (((pk,), {"time_limit": int(1000 * time_limit(cls))}) for pk, cls in messages)
        enqueue_many(get_actor(SCORE_TASK), items)
    return len(messages)


def _pending_take(job_id, cursor: int, room: int, now) -> list[tuple[int, str | None]]:
    """Move up to `room` pending tasks of the job after its cursor to queued, in id order (the
    (job, status, id) index), and advance the cursor; a job with none left stops being looked at."""
    rows = list(
        ScoringTask.objects.filter(job_id=job_id, status=states.Status.PENDING, pk__gt=cursor)
        .order_by("pk")
        .values_list("pk", "scorer__leaf_object_class")[:room]
    )
    if rows:
        ScoringTask.objects.filter(pk__in=[pk for pk, _ in rows], status=states.Status.PENDING).update(
            status=states.Status.QUEUED, dispatched_at=now
        )
    fields = {"dispatch_cursor": rows[-1][0]} if rows else {}
    if len(rows) < room:
        fields["dispatch_pending"] = False
    if fields:
        ScoringJob.objects.filter(pk=job_id).update(**fields)
    return rows


def job_reopen(*, job_id) -> None:
    """Let the window see the job's pending tasks again from its first (after a retry)."""
    ScoringJob.objects.filter(pk=job_id).update(dispatch_cursor=0, dispatch_pending=True)


class Refiller:
    """One per worker process: `poke()` after a task finishes. A thread refills once the process
    has finished an eighth of a window since its last refill (a window is refilled when half
    empty, so fewer passes would do nothing), or a second after any poke, or when forced."""

    def __init__(self):
        self._poked = threading.Event()
        self._lock = threading.Lock()
        self._finished = 0
        self._thread: threading.Thread | None = None

    def poke(self, *, force: bool = False) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="scoring-window-refill", daemon=True)
                self._thread.start()
            self._finished += 1
            if force or self._finished >= max(8, settings.SCORING_DISPATCH_WINDOW // 8):
                self._poked.set()

    def _loop(self) -> None:
        while True:
            self._poked.wait(timeout=1.0)
            with self._lock:
                due, self._finished = self._finished, 0
                self._poked.clear()
            if not due:
                continue
            try:
                windows_refill()
            except Exception:  # the next poke, or the housekeeping's, tries again
                logger.exception("Refilling the dispatch windows failed")
                connection.close()
            time.sleep(REFILL_INTERVAL)


refiller = Refiller()
