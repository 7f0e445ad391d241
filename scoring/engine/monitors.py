"""Online scoring: the outbox of ended calls matched in batches against their projects' active
monitors (op names, query, sampling), debounce timers fired when due, and the matches turned into
tasks of the job of each monitor version, scored by the usual engine."""

import base64
import binascii
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache, reduce

import dramatiq
from django import db
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from scoring.engine.broker import wait_for_monitors_wake, wake_monitors
from scoring.engine.dispatch import tasks_send
from scoring.models import Call, MonitorOutbox, MonitorTimer, MonitorVersion, Object, ScoringJob, ScoringTask
from scoring.scorers import scorer_class_for
from scoring.selectors.calls import CALL_FIELDS
from scoring.selectors.costs import budget_spent_reason
from scoring.selectors.monitors import monitor_scorers, monitors_active
from scoring.weave.monitors import MonitorInvalid, MonitorSpec, monitor_spec, sampled_in
from scoring.weave.query import EVERYTHING, QueryError, query_to_q
from scoring.weave.refs import object_ref_uri

logger = logging.getLogger(__name__)

SOURCE = "monitor"


@dataclass(frozen=True)
class Plan:
    """What one monitor version does with a call: the calls it selects, and the scorers it applies."""

    spec: MonitorSpec
    condition: Q
    scorer_pks: tuple[int, ...]
    metered: bool  # a scorer spends budget (a judge): the monitor pauses while the budget is spent


@lru_cache(maxsize=1024)
def monitor_plan(monitor_pk: int) -> Plan:
    """The plan of a stored monitor version (a version never changes, so it is cached); a scorer
    ref that names no usable scorer is left out, a query that cannot be translated is
    MonitorInvalid."""
    obj = Object.objects.get(pk=monitor_pk)
    spec = monitor_spec(obj.val, class_name=obj.leaf_object_class)
    try:
        query = query_to_q(spec.query, CALL_FIELDS) if spec.query else None
    except QueryError as exc:
        raise MonitorInvalid(f"query: {exc.msg}") from None
    ops = [Q(op_name__startswith=name[:-1]) if name.endswith(":*") else Q(op_name=name) for name in spec.op_names]
    condition = reduce(lambda a, b: a | b, ops) if ops else EVERYTHING
    if query is not None:
        condition &= query
    scorers = monitor_scorers(obj, spec)
    metered = any(getattr(scorer_class_for(scorer.val), "metered", False) for scorer in scorers)
    return Plan(spec, condition, tuple(sorted(scorer.pk for scorer in scorers)), metered)


def _publisher(monitor: Object):
    """The user who published the monitor version (its wb_user_id is base64 of `User:<pk>`)."""
    try:
        kind, _, pk = base64.b64decode(monitor.wb_user_id or "").decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if kind != "User" or not pk.isdigit():
        return None
    return get_user_model().objects.filter(pk=int(pk)).first()


def monitor_job(monitor: Object, plan: Plan) -> MonitorVersion | None:
    """The state row (job and counters) of a monitor version, made on its first match."""
    state = MonitorVersion.objects.filter(monitor=monitor).first()
    if state is not None:
        return state
    publisher = _publisher(monitor)
    if publisher is None:
        logger.warning("Monitor %s has no known publisher; it scores nothing", monitor)
        return None
    project_id = monitor.project.project_id
    ref = object_ref_uri(project_id, monitor.object_id, monitor.digest)
    scorer_refs = [
        object_ref_uri(project_id, object_id, digest)
        for object_id, digest in Object.objects.filter(pk__in=plan.scorer_pks).values_list("object_id", "digest")
    ]
    try:
        with transaction.atomic():
            job = ScoringJob.objects.create(
                project_id=monitor.project_id,
                user=publisher,
                wb_user_id=monitor.wb_user_id,
                request={"project_id": project_id, "monitor_ref": ref, "scorer_refs": scorer_refs},
                scorer_refs=scorer_refs,
                source=SOURCE,
                trigger_ref=ref,
                is_traced=plan.spec.is_traced,
            )
            return MonitorVersion.objects.create(monitor=monitor, job=job)
    except IntegrityError:  # another consumer made it first
        return MonitorVersion.objects.get(monitor=monitor)


def tasks_add(job_id, call_pks: list[int], scorer_pks: tuple[int, ...]) -> list[int]:
    """Queue one task per (call, scorer) not yet in the job; returns the new tasks' ids. The
    (job, call, scorer) constraint makes a call matched twice (a redelivery) a no-op."""
    if not call_pks or not scorer_pks:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {ScoringTask._meta.db_table} (job_id, call_id, scorer_id, status, attempts, "
                "retried_at_attempt, error_type, error_message) "
                "SELECT %s, c, s, %s, 0, 0, '', '' FROM unnest(%s::bigint[]) AS c CROSS JOIN unnest(%s::bigint[]) AS s "
                "ON CONFLICT (job_id, call_id, scorer_id) DO NOTHING RETURNING id",
                [job_id, ScoringTask.Status.QUEUED, sorted(call_pks), list(scorer_pks)],
            )
            ids = [row[0] for row in cursor.fetchall()]
    else:
        existing = set(
            ScoringTask.objects.filter(job_id=job_id, call_id__in=call_pks).values_list("call_id", "scorer_id")
        )
        new = [
            ScoringTask(job_id=job_id, call_id=c, scorer_id=s)
            for c in call_pks
            for s in scorer_pks
            if (c, s) not in existing
        ]
        ScoringTask.objects.bulk_create(new)
        ids = list(
            ScoringTask.objects.filter(job_id=job_id, call_id__in=[t.call_id for t in new]).values_list("pk", flat=True)
        )
    if ids:
        # A monitor's job grows as calls end: it is unfinished again until these are done.
        ScoringJob.objects.filter(pk=job_id).update(
            task_count=F("task_count") + len(ids), finished_at=None, final_status="", final_counts=None
        )
    return ids


def _send_after_commit(task_ids: list[int]) -> None:
    def send():
        try:
            for start in range(0, len(task_ids), 10_000):
                tasks_send(tasks=ScoringTask.objects.filter(pk__in=task_ids[start : start + 10_000]))
        except Exception:  # the tasks are queued in the database: the reconciler sends them
            logger.exception("Could not send %d monitor task(s); the reconciler will", len(task_ids))

    if task_ids:
        transaction.on_commit(send)


def outbox_consume(*, limit: int | None = None) -> int:
    """Match a batch of ended calls against their projects' active monitors, in one transaction
    with the batch's deletion from the outbox (so a worker that dies midway leaves it for
    another, and concurrent consumers skip each other's rows). Returns how many were consumed."""
    limit = limit or settings.SCORING_MONITOR_BATCH
    with transaction.atomic():
        rows = list(
            MonitorOutbox.objects.select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", "project_id", "call_id")[:limit]
        )
        if not rows:
            return 0
        by_project: dict[int, set[int]] = {}
        for _, project_pk, call_pk in rows:
            by_project.setdefault(project_pk, set()).add(call_pk)
        new_tasks: list[int] = []
        for project_pk, call_pks in by_project.items():
            for monitor, _ in monitors_active(project_pk=project_pk):
                new_tasks += _match(monitor, sorted(call_pks))
        MonitorOutbox.objects.filter(pk__in=[row[0] for row in rows]).delete()
        _send_after_commit(new_tasks)
    return len(rows)


def _match(monitor: Object, call_pks: list[int]) -> list[int]:
    try:
        plan = monitor_plan(monitor.pk)
    except MonitorInvalid as exc:
        logger.warning("Monitor %s cannot be applied: %s", monitor, exc)
        return []
    if not plan.scorer_pks:
        return []
    if plan.metered and (paused := budget_spent_reason(project_pk=monitor.project_id)):
        # Paused, not failing: its calls would only become tasks cancelled one by one. The
        # monitors API says why (MonitorVersionStats.paused); it resumes when budget is left.
        logger.info("Monitor %s is paused: %s", monitor, paused)
        return []
    spec = plan.spec
    matched = list(
        Call.objects.filter(plan.condition, pk__in=call_pks, deleted_at__isnull=True)
        .order_by("ended_at", "pk")
        .values_list("pk", "call_id", "trace_id", "thread_id")
    )
    if not matched:
        return []
    state = monitor_job(monitor, plan)
    if state is None:
        return []
    field = spec.debounce.field if spec.debounce else None
    kept, windows = [], {}
    for pk, call_id, trace_id, thread_id in matched:
        group = {"trace_id": trace_id, "thread_id": thread_id}.get(field) if field else None
        if not sampled_in(monitor.object_id, group or call_id, spec.sampling_rate):
            continue
        if group:
            windows.setdefault(group, []).append(pk)
        else:
            kept.append(pk)
    sampled_out = len(matched) - len(kept) - sum(len(pks) for pks in windows.values())
    MonitorVersion.objects.filter(pk=state.pk).update(
        matched=F("matched") + len(matched), sampled_out=F("sampled_out") + sampled_out
    )
    if windows:
        _windows_extend(monitor, spec, windows)
    return tasks_add(state.job_id, kept, plan.scorer_pks)


def _windows_extend(monitor: Object, spec: MonitorSpec, windows: dict[str, list[int]]) -> None:
    """Add calls to their debounce windows, each restarted: due `timeout_seconds` from now."""
    due = timezone.now() + timedelta(seconds=spec.debounce.timeout_seconds)
    for attempt in range(3):
        try:
            with transaction.atomic():
                timers = MonitorTimer.objects.select_for_update().filter(
                    project_id=monitor.project_id, monitor_name=monitor.object_id, group_key__in=list(windows)
                )
                found = {timer.group_key: timer for timer in timers}
                for timer in found.values():
                    known = set(timer.call_pks)
                    timer.call_pks = [*timer.call_pks, *(pk for pk in windows[timer.group_key] if pk not in known)]
                    timer.due_at, timer.monitor_id = due, monitor.pk
                MonitorTimer.objects.bulk_update(found.values(), ["call_pks", "due_at", "monitor"])
                MonitorTimer.objects.bulk_create(
                    MonitorTimer(
                        project_id=monitor.project_id,
                        monitor_name=monitor.object_id,
                        group_key=key,
                        monitor_id=monitor.pk,
                        call_pks=pks,
                        due_at=due,
                    )
                    for key, pks in windows.items()
                    if key not in found
                )
            return
        except IntegrityError:  # a concurrent consumer opened one of these windows: look again
            if attempt == 2:
                raise


def timers_fire(*, limit: int | None = None) -> int:
    """Score the debounce windows that are due (no new call for their timeout): their last call,
    or all their calls. Returns how many windows were closed."""
    limit = limit or settings.SCORING_MONITOR_BATCH
    with transaction.atomic():
        timers = list(
            MonitorTimer.objects.select_for_update(skip_locked=True)
            .filter(due_at__lte=timezone.now())
            .order_by("due_at")[:limit]
        )
        if not timers:
            return 0
        new_tasks: list[int] = []
        for timer in timers:
            monitor = Object.objects.filter(pk=timer.monitor_id).first()
            try:
                plan = monitor_plan(timer.monitor_id) if monitor else None
            except MonitorInvalid:
                plan = None
            state = monitor_job(monitor, plan) if plan and plan.scorer_pks else None
            if state is None or not timer.call_pks:
                continue
            calls = timer.call_pks if plan.spec.debounce.method == "all_messages" else timer.call_pks[-1:]
            new_tasks += tasks_add(state.job_id, calls, plan.scorer_pks)
        MonitorTimer.objects.filter(pk__in=[timer.pk for timer in timers]).delete()
        _send_after_commit(new_tasks)
    return len(timers)


def monitors_step() -> int:
    """One round of the consumer: a batch of the outbox, then the windows that are due."""
    return outbox_consume() + timers_fire()


def outbox_notify() -> None:
    """After a commit that wrote outbox rows: wake a matcher now rather than at its next poll."""
    try:
        wake_monitors(dramatiq.get_broker())
    except Exception:  # the rows are committed: the next poll finds them
        logger.warning("Could not wake the monitors' matcher; its poll will find the calls", exc_info=True)


class MonitorConsumer:
    """A thread per worker process that runs monitors_step, at once again while there is work, as
    soon as an ingest wakes it (outbox_notify), and every SCORING_MONITOR_POLL_SECONDS otherwise;
    several processes share the work (SKIP LOCKED)."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="scoring-monitors", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()

    def _loop(self):
        poll = settings.SCORING_MONITOR_POLL_SECONDS
        while not self._stop.is_set():
            busy = False
            try:
                busy = monitors_step() > 0
            except Exception:
                logger.exception("Monitor matching failed; trying again in %ss", poll)
                db.connection.close()
            if not busy and not self._stop.is_set():
                try:
                    wait_for_monitors_wake(dramatiq.get_broker(), poll)
                except Exception:
                    logger.warning("Waiting for a wake-up failed; polling instead", exc_info=True)
                    self._stop.wait(poll)
        db.connection.close()
