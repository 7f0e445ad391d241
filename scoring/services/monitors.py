"""Monitors: activating and deactivating one as the weave client does, and backfill (a monitor,
or scorers, applied to calls that ended before it existed; an ordinary job through job_submit)."""

from datetime import datetime

from django.db.models import Q

from scoring.engine.monitors import monitor_plan
from scoring.errors import NotFound, RequestValidationError, error
from scoring.models import Call, Feedback, Object
from scoring.selectors.monitors import MONITOR_OBJECTS, monitors_latest
from scoring.selectors.projects import project_for_read
from scoring.services.jobs import SubmittedJob, job_submit
from scoring.services.objects import object_create
from scoring.weave.monitors import MonitorInvalid, monitor_spec, op_names_normalized, sampled_in
from scoring.weave.refs import InvalidRef, call_ref_uri, object_ref_uri, parse_object_ref

SOURCE = "backfill"


def monitor_set_active(*, user, project_id: str, name: str, active: bool) -> Object:
    """Publish the monitor again with `active` set, as the client's Monitor.activate() and
    deactivate() do: its latest value with short op names expanded to op refs, through
    object_create (so the user must be allowed to write the project and is its publisher).
    Publishing content an earlier version had makes that version the latest again."""
    project = project_for_read(user=user, project_id=project_id)
    latest = monitors_latest(project_pk=project.pk).filter(object_id=name).first() if project else None
    if latest is None:
        raise NotFound(f"No monitor {name!r} in project {project_id}.")
    try:
        monitor_spec(latest.val, class_name=latest.leaf_object_class)
        op_names = op_names_normalized(latest.val.get("op_names") or [], project_id=project_id)
    except MonitorInvalid as exc:
        raise RequestValidationError([error(("body", "name"), f"Monitor {name!r}: {exc}", "monitor_invalid")]) from None
    val = {**latest.val, "active": active, "op_names": op_names}
    return object_create(user=user, project_id=project_id, object_id=name, val=val)


def monitor_backfill(
    *,
    user,
    project_id: str,
    monitor_ref: str | None = None,
    scorer_refs: list[str] | None = None,
    ended_after: datetime | None = None,
    ended_before: datetime | None = None,
    rescore: bool = False,
) -> SubmittedJob:
    """Score the calls of the project that ended in [ended_after, ended_before) with a monitor
    (its op names, query and sampling; no debounce) or with scorers; with `rescore`, only the
    calls that have a score from another version of the same scorer. The pair limit of
    /calls/score applies."""
    project = project_for_read(user=user, project_id=project_id)
    if (monitor_ref is None) == (not scorer_refs):
        raise RequestValidationError(
            [error(("body",), "Give either monitor_ref or scorer_refs (one of them)", "value_error")]
        )
    if rescore and monitor_ref is not None:
        raise RequestValidationError(
            [error(("body", "rescore"), "rescore applies to scorer_refs, not to a monitor", "value_error")]
        )
    calls = Call.objects.filter(project=project, ended_at__isnull=False, deleted_at__isnull=True)
    if ended_after is not None:
        calls = calls.filter(ended_at__gte=ended_after)
    if ended_before is not None:
        calls = calls.filter(ended_at__lt=ended_before)
    trigger_ref = None
    monitor = None
    if monitor_ref is not None:
        monitor = _monitor(project, project_id, monitor_ref)
        try:
            plan = monitor_plan(monitor.pk)
        except MonitorInvalid as exc:
            raise RequestValidationError([error(("body", "monitor_ref"), str(exc), "monitor_invalid")]) from None
        calls = calls.filter(plan.condition)
        scorer_refs = list(plan.spec.scorer_refs)
        trigger_ref = object_ref_uri(project_id, monitor.object_id, monitor.digest)
    elif rescore:
        calls = calls.filter(call_id__in=_scored_by_other_versions(project, project_id, scorer_refs))
    call_ids = list(calls.order_by("ended_at", "pk").values_list("call_id", flat=True)) if project else []
    if monitor is not None:
        rate = plan.spec.sampling_rate
        call_ids = [call_id for call_id in call_ids if sampled_in(monitor.object_id, call_id, rate)]
    request = {
        "project_id": project_id,
        "backfill": {
            "monitor_ref": trigger_ref,
            "scorer_refs": scorer_refs,
            "ended_after": ended_after.isoformat() if ended_after else None,
            "ended_before": ended_before.isoformat() if ended_before else None,
            "rescore": rescore,
        },
    }
    return job_submit(
        user=user,
        project_id=project_id,
        call_ids=call_ids,
        scorer_refs=scorer_refs,
        request=request,
        source=SOURCE,
        trigger_ref=trigger_ref,
    )


def _monitor(project, project_id: str, ref: str) -> Object:
    loc = ("body", "monitor_ref")
    try:
        parsed = parse_object_ref(ref)
    except InvalidRef as exc:
        raise RequestValidationError([error(loc, f"Invalid monitor ref: {exc}", "monitor_ref_invalid")]) from None
    if parsed.project_id != project_id or parsed.kind != "object" or parsed.extra:
        raise RequestValidationError(
            [error(loc, f"Monitor ref must be an object of project {project_id}", "monitor_ref_invalid")]
        )
    versions = Object.objects.filter(MONITOR_OBJECTS, project=project, object_id=parsed.name)
    version = versions.filter(is_latest=True) if parsed.version == "latest" else versions.filter(digest=parsed.version)
    monitor = version.first() if project else None
    if monitor is None:
        raise RequestValidationError([error(loc, f"No monitor {parsed.name}:{parsed.version}", "monitor_not_found")])
    return monitor


def _scored_by_other_versions(project, project_id: str, scorer_refs: list[str]) -> list[str]:
    """Ids of the calls that have feedback from a version of one of these scorers other than the
    one given."""
    condition = Q(pk__in=[])
    for index, ref in enumerate(scorer_refs):
        try:
            parsed = parse_object_ref(ref)
        except InvalidRef as exc:
            raise RequestValidationError(
                [error(("body", "scorer_refs", index), f"Invalid scorer ref: {exc}", "scorer_ref_invalid")]
            ) from None
        prefix = object_ref_uri(project_id, parsed.name, "")
        condition |= Q(runnable_ref__startswith=prefix) & ~Q(runnable_ref=ref)
    refs = Feedback.objects.filter(condition, project=project).values_list("weave_ref", flat=True).distinct()
    prefix = call_ref_uri(project_id, "")
    return [ref[len(prefix) :] for ref in refs if ref.startswith(prefix)]
