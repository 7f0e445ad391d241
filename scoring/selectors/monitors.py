"""Reading monitors: the active ones of a project (latest versions), which projects have any (a
flag each process keeps for a moment), each version's counts and latency, and a project's monitors."""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, Q

from scoring.errors import NotFound
from scoring.models import Feedback, MonitorVersion, Object, Project, ScoringJob, ScoringTask
from scoring.scorers import scorer_class_for
from scoring.selectors.costs import budget_spent_reason
from scoring.selectors.projects import project_for_read
from scoring.weave.monitors import MONITOR_CLASSES, MonitorInvalid, MonitorSpec, monitor_spec
from scoring.weave.refs import InvalidRef, object_ref_uri, parse_object_ref

logger = logging.getLogger(__name__)

MONITOR_OBJECTS = Q(base_object_class__in=MONITOR_CLASSES) | Q(leaf_object_class__in=MONITOR_CLASSES)
LATENCY_SAMPLE = 10_000  # the latest results a version's latency percentiles are taken over

_flags: dict[int, tuple[bool, float]] = {}  # project pk -> (has an active monitor, read at)
_flags_lock = threading.Lock()


def monitors_latest(*, project_pk: int):
    """The latest version of each monitor of the project, active or not."""
    return Object.objects.filter(MONITOR_OBJECTS, project_id=project_pk, is_latest=True, deleted_at__isnull=True)


def monitors_active(*, project_pk: int) -> list[tuple[Object, MonitorSpec]]:
    """The project's active monitors, each as its latest version; a version that cannot be read
    as a monitor counts as inactive."""
    active = []
    for obj in monitors_latest(project_pk=project_pk).filter(val__active=True):
        try:
            spec = monitor_spec(obj.val, class_name=obj.leaf_object_class)
        except MonitorInvalid:
            continue
        if spec.active:
            active.append((obj, spec))
    return active


def projects_monitored(project_pks) -> set[int]:
    """Those of the projects that have an active monitor. Kept per process for
    SCORING_MONITOR_FLAG_SECONDS, so that ingesting a batch costs at most one small query a
    second per project; a publish in this process forgets the project's flag at once."""
    now = time.monotonic()
    ttl = settings.SCORING_MONITOR_FLAG_SECONDS
    known, stale = set(), []
    for pk in project_pks:
        flag = _flags.get(pk)
        if flag is None or now - flag[1] > ttl:
            stale.append(pk)
        elif flag[0]:
            known.add(pk)
    if stale:
        found = set(
            Object.objects.filter(
                MONITOR_OBJECTS, project_id__in=stale, is_latest=True, deleted_at__isnull=True, val__active=True
            )
            .values_list("project_id", flat=True)
            .distinct()
        )
        with _flags_lock:
            for pk in stale:
                _flags[pk] = (pk in found, now)
        known |= found
    return known


def projects_monitored_forget(project_pk: int) -> None:
    with _flags_lock:
        _flags.pop(project_pk, None)


@dataclass(frozen=True)
class MonitorVersionStats:
    """One monitor version's counts and the latency from a call's end to its scores."""

    ref: str
    version_index: int
    active: bool
    created_at: object
    job_id: object
    matched: int
    sampled_out: int
    tasks: dict[str, int]
    latency_p50_seconds: float | None
    latency_p99_seconds: float | None
    cost_usd: float = 0.0  # what its judges have spent (its job's settled cost)
    paused: str | None = None  # why an active version scores no new call (a spent budget)


def monitor_stats(*, user, project_id: str, name: str) -> list[MonitorVersionStats]:
    """Every version of the monitor `name`, newest first, with its counts; NotFound if the
    project has no such monitor."""
    project = project_for_read(user=user, project_id=project_id)
    versions = (
        list(Object.objects.filter(MONITOR_OBJECTS, project=project, object_id=name).order_by("-version_index"))
        if project
        else []
    )
    if not versions:
        raise NotFound(f"No monitor {name!r} in project {project_id}.")
    return _versions_stats(project_id, versions)


def _versions_stats(project_id: str, versions: list[Object]) -> list[MonitorVersionStats]:
    """The counts and latency of these monitor versions, in their order."""
    states = {state.monitor_id: state for state in MonitorVersion.objects.filter(monitor__in=versions)}
    job_ids = [state.job_id for state in states.values()]
    counts: dict = {job_id: {status: 0 for status in ScoringTask.Status.values} for job_id in job_ids}
    rows = ScoringTask.objects.filter(job_id__in=job_ids).values_list("job_id", "status").annotate(n=Count("id"))
    for job_id, status, n in rows.order_by():
        counts[job_id][status] = n
    stats = []
    costs = dict(ScoringJob.objects.filter(pk__in=job_ids).values_list("pk", "cost_usd"))
    for obj in versions:
        state = states.get(obj.pk)
        p50 = p99 = None
        if state is not None:
            p50, p99 = _latency(state.job_id)
        try:
            spec = monitor_spec(obj.val, class_name=obj.leaf_object_class)
            active = spec.active
        except MonitorInvalid:
            spec, active = None, False
        paused = None
        if active and any(getattr(scorer_class_for(s.val), "metered", False) for s in monitor_scorers(obj, spec)):
            paused = budget_spent_reason(project_pk=obj.project_id)
        stats.append(
            MonitorVersionStats(
                ref=object_ref_uri(project_id, obj.object_id, obj.digest),
                version_index=obj.version_index,
                active=active,
                created_at=obj.created_at,
                job_id=state.job_id if state else None,
                matched=state.matched if state else 0,
                sampled_out=state.sampled_out if state else 0,
                tasks=counts.get(state.job_id, {}) if state else {},
                latency_p50_seconds=p50,
                latency_p99_seconds=p99,
                cost_usd=float(costs.get(state.job_id, 0) or 0) if state else 0.0,
                paused=paused,
            )
        )
    return stats


def monitor_scorers(monitor: Object, spec: MonitorSpec) -> list[Object]:
    """The stored scorers a monitor version names: supported scorers of its own project, by digest
    or `latest`; a ref that names none is left out (and logged)."""
    project_id = monitor.project.project_id
    wanted: dict[tuple[str, str], str] = {}
    for ref in spec.scorer_refs:
        try:
            parsed = parse_object_ref(ref)
        except InvalidRef:
            logger.warning("Monitor %s names an invalid scorer ref %r", monitor, ref)
            continue
        if parsed.project_id != project_id or parsed.kind != "object" or parsed.extra:
            logger.warning("Monitor %s names a scorer outside its project: %r", monitor, ref)
            continue
        wanted[(parsed.name, parsed.version)] = ref
    found = Object.objects.filter(
        project_id=monitor.project_id, object_id__in={name for name, _ in wanted}, deleted_at__isnull=True
    )
    scorers = []
    for obj in found:
        if (obj.object_id, obj.digest) in wanted or (obj.is_latest and (obj.object_id, "latest") in wanted):
            if scorer_class_for(obj.val) is None:
                logger.warning("Monitor %s names %s, which is not a supported scorer", monitor, obj)
                continue
            scorers.append(obj)
    return scorers


@dataclass(frozen=True)
class MonitorSummary:
    """A monitor as its latest version: what it asks for (None, with the reason, when the value
    cannot be read as a monitor) and that version's counts."""

    obj: Object
    spec: MonitorSpec | None
    problem: str | None
    stats: MonitorVersionStats


def project_monitors(*, project: Project, name: str | None = None) -> list[MonitorSummary]:
    """The project's monitors (or the one named), by name, each as its latest version."""
    latest = monitors_latest(project_pk=project.pk).order_by("object_id")
    if name is not None:
        latest = latest.filter(object_id=name)
    latest = list(latest)
    summaries = []
    for obj, stats in zip(latest, _versions_stats(project.project_id, latest), strict=True):
        try:
            spec, problem = monitor_spec(obj.val, class_name=obj.leaf_object_class), None
        except MonitorInvalid as exc:
            spec, problem = None, str(exc)
        summaries.append(MonitorSummary(obj=obj, spec=spec, problem=problem, stats=stats))
    return summaries


def monitors_using(*, project: Project, scorer_ref: str) -> list[Object]:
    """The latest versions of the project's monitors whose scorers include this scorer version."""
    # Filtered here rather than by JSON containment, which SQLite lacks; a project has few monitors.
    return [
        obj
        for obj in monitors_latest(project_pk=project.pk).order_by("object_id")
        if isinstance(obj.val, dict) and isinstance(obj.val.get("scorers"), list) and scorer_ref in obj.val["scorers"]
    ]


def monitor_names(*, user, project_id: str) -> list[str]:
    """The names of the project's monitors."""
    project = project_for_read(user=user, project_id=project_id)
    if project is None:
        return []
    return sorted(monitors_latest(project_pk=project.pk).values_list("object_id", flat=True))


def _latency(job_id) -> tuple[float | None, float | None]:
    """p50 and p99 of (feedback written - call ended) over the job's latest results."""
    delays = sorted(
        delay.total_seconds()
        for delay in Feedback.objects.filter(task__job_id=job_id)
        .annotate(delay=F("created_at") - F("task__call__ended_at"))
        .order_by("-created_at")
        .values_list("delay", flat=True)[:LATENCY_SAMPLE]
        if isinstance(delay, timedelta)
    )
    if not delays:
        return None, None
    return _percentile(delays, 0.5), _percentile(delays, 0.99)


def _percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]
