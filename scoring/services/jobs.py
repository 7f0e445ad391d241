"""Scoring jobs: accepting a `POST /calls/score` request as a job and its tasks."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from scoring.engine import states
from scoring.engine.dispatch import job_dispatch
from scoring.engine.jobs import job_finish_if_done
from scoring.engine.window import job_reopen
from scoring.errors import RequestValidationError, error
from scoring.models import Call, Object, Project, ScoringJob, ScoringTask
from scoring.scorers import ScorerConfigError, scorer_class_for, scorer_validate, supported_classes
from scoring.selectors.costs import default_job_cap
from scoring.selectors.jobs import job_for_user
from scoring.selectors.objects import VERSION_INDEX
from scoring.selectors.projects import project_for_read
from scoring.services.estimates import JobEstimate, pairs_estimate
from scoring.services.projects import project_for_write
from scoring.weave.ids import wb_user_id_for
from scoring.weave.refs import InvalidRef, ObjectRef, object_ref_uri, parse_object_ref

logger = logging.getLogger(__name__)

LOOKUP_CHUNK = 10_000  # ids per IN (...) query: far below every backend's parameter limits


@dataclass(frozen=True)
class SubmittedJob:
    job: ScoringJob
    task_count: int


def _unique(values: list[str]) -> dict[str, list[int]]:
    """Each distinct value with the request indexes it appears at, in first-seen order."""
    seen: dict[str, list[int]] = {}
    for index, value in enumerate(values):
        seen.setdefault(value, []).append(index)
    return seen


def _resolve_calls(project: Project | None, call_ids: dict[str, list[int]], errors: list) -> list[int]:
    found: dict[str, int] = {}
    if project is not None:
        ids = list(call_ids)
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            found.update(
                Call.objects.filter(project=project, call_id__in=chunk, deleted_at__isnull=True).values_list(
                    "call_id", "pk"
                )
            )
    for call_id, indexes in call_ids.items():
        if call_id not in found:
            for index in indexes:
                errors.append(
                    error(
                        ("body", "call_ids", index),
                        f"Call {call_id!r} does not exist in this project",
                        "call_not_found",
                    )
                )
    return [found[c] for c in call_ids if c in found]


class _ScorerRefProblem(Exception):
    def __init__(self, msg: str, type_: str):
        super().__init__(msg)
        self.msg, self.type = msg, type_


def _resolve_scorers(
    project: Project | None, project_id: str, refs: dict[str, list[int]], errors: list
) -> list[Object]:
    """Each scorer ref pinned to one stored object version of a supported scorer class, with
    one query for all of them."""
    parsed: dict[str, ObjectRef | _ScorerRefProblem] = {ref: _parse_scorer_ref(ref, project_id) for ref in refs}
    names = {p.name for p in parsed.values() if isinstance(p, ObjectRef)}
    versions: dict[str, list[Object]] = {}
    if project is not None and names:
        for obj in Object.objects.filter(project=project, object_id__in=names, deleted_at__isnull=True):
            versions.setdefault(obj.object_id, []).append(obj)

    resolved: dict[int, Object] = {}
    for ref, indexes in refs.items():
        outcome = parsed[ref]
        if isinstance(outcome, ObjectRef):
            outcome = _pick_version(outcome, versions.get(outcome.name, []))
        if isinstance(outcome, _ScorerRefProblem):
            errors.extend(error(("body", "scorer_refs", i), outcome.msg, outcome.type) for i in indexes)
        else:
            resolved.setdefault(outcome.pk, outcome)
    return list(resolved.values())


def _parse_scorer_ref(ref: str, project_id: str) -> ObjectRef | _ScorerRefProblem:
    try:
        parsed = parse_object_ref(ref)
    except InvalidRef as exc:
        return _ScorerRefProblem(f"Invalid scorer ref: {exc}", "scorer_ref_invalid")
    if parsed.project_id != project_id:
        return _ScorerRefProblem(
            f"Scorer ref belongs to project {parsed.project_id!r}, not {project_id!r}", "scorer_ref_project_mismatch"
        )
    if parsed.kind != "object" or parsed.extra:
        return _ScorerRefProblem(
            "Scorer ref must point at a whole object (…/object/<name>:<digest>)", "scorer_ref_invalid"
        )
    return parsed


def _pick_version(ref: ObjectRef, versions: list[Object]) -> Object | _ScorerRefProblem:
    """The version a ref names: a digest, `latest` or `v<N>`; and it must be a supported scorer."""
    if ref.version == "latest":
        matches = [o for o in versions if o.is_latest]
    elif VERSION_INDEX.fullmatch(ref.version):
        matches = [o for o in versions if o.version_index == int(ref.version[1:])]
    else:
        matches = [o for o in versions if o.digest == ref.version]
    if not matches:
        return _ScorerRefProblem(
            f"Scorer object {ref.name}:{ref.version} does not exist in this project", "scorer_not_found"
        )
    obj = matches[0]
    if scorer_class_for(obj.val) is None:
        found = obj.val.get("_class_name") if isinstance(obj.val, dict) else None
        return _ScorerRefProblem(
            f"Object {ref.name}:{obj.digest} is a {found or 'plain object'}, not a supported scorer; "
            f"supported classes: {', '.join(supported_classes())}",
            "scorer_class_unsupported",
        )
    try:
        scorer_validate(obj.val)
    except ScorerConfigError as exc:
        uri = object_ref_uri(ref.project_id, ref.name, obj.digest)
        return _ScorerRefProblem(f"Scorer {uri} cannot run: {exc}", "scorer_invalid")
    return obj


def job_estimate(*, user, project_id: str, call_ids: list[str], scorer_refs: list[str]) -> JobEstimate:
    """What `job_submit` of this request would cost and whether it fits the budget; records nothing."""
    project, call_pks, scorers = _request_resolve(
        user=user, project_id=project_id, call_ids=call_ids, scorer_refs=scorer_refs
    )
    return pairs_estimate(project=project, project_id=project_id, call_pks=call_pks, scorers=scorers)


def _budget_check(project, project_id: str, call_pks: list[int], scorers: list[Object]) -> None:
    """A request with judges whose estimate does not fit the project's budget is a 422 that says
    what it would cost and what remains."""
    if project is None or not any(getattr(scorer_class_for(o.val), "metered", False) for o in scorers):
        return
    estimate = pairs_estimate(project=project, project_id=project_id, call_pks=call_pks, scorers=scorers)
    if estimate.fits:
        return
    remaining = estimate.budget.remaining
    ctx = {
        "estimated_usd": float(estimate.usd),
        "remaining_usd": None if remaining is None else float(remaining),
        "job_cap_usd": None if estimate.budget.job_cap_usd is None else float(estimate.budget.job_cap_usd),
    }
    raise RequestValidationError(
        [error(("body",), problem, "budget_exceeded", ctx=ctx) for problem in estimate.problems]
    )


def _request_resolve(*, user, project_id: str, call_ids: list[str], scorer_refs: list[str]):
    """The project, the call pks and the scorer objects of a request; a 422 naming every bad item."""
    project = project_for_read(user=user, project_id=project_id)
    unique_calls, unique_refs = _unique(call_ids), _unique(scorer_refs)

    limit = settings.SCORING_MAX_PAIRS_PER_JOB
    pair_count = len(unique_calls) * len(unique_refs)
    if pair_count > limit:
        raise RequestValidationError(
            [
                error(
                    ("body",),
                    f"This request makes {pair_count:,} (call, scorer) pairs; at most {limit:,} are allowed "
                    "per request. Split it into several requests.",
                    "too_many_pairs",
                )
            ]
        )

    errors: list[dict] = []
    call_pks = _resolve_calls(project, unique_calls, errors)
    scorers = _resolve_scorers(project, project_id, unique_refs, errors)
    if errors:
        errors.sort(key=lambda e: (e["loc"][1], e["loc"][2]))
        raise RequestValidationError(errors)
    return project, call_pks, scorers


def job_submit(
    *,
    user,
    project_id: str,
    call_ids: list[str],
    scorer_refs: list[str],
    request: dict,
    source: str = "request",
    trigger_ref: str | None = None,
) -> SubmittedJob:
    """Validate a scoring request against the stored calls, scorers and budget, record the job and
    one task per distinct (call, scorer) pair in one transaction, and dispatch it after commit.
    `source` and `trigger_ref` say what asked (a backfill names its monitor)."""
    project, call_pks, scorers = _request_resolve(
        user=user, project_id=project_id, call_ids=call_ids, scorer_refs=scorer_refs
    )
    _budget_check(project, project_id, call_pks, scorers)

    with transaction.atomic():
        job = ScoringJob.objects.create(
            project=project or project_for_write(user=user, project_id=project_id),
            user=user,
            wb_user_id=wb_user_id_for(user),
            client_wb_user_id=request.get("wb_user_id"),
            request=request,
            scorer_refs=[object_ref_uri(project_id, o.object_id, o.digest) for o in scorers],
            task_count=len(call_pks) * len(scorers),
            source=source,
            trigger_ref=trigger_ref,
            cost_cap_usd=default_job_cap(getattr(project, "budget", None)),
        )
        if not job.task_count:
            job_finish_if_done(job_id=job.pk)
        _tasks_insert(job, call_pks, [scorer.pk for scorer in scorers])
        if job.task_count:
            transaction.on_commit(lambda: job_dispatch(job_id=job.pk))
    return SubmittedJob(job=job, task_count=job.task_count)


def _tasks_insert(job: ScoringJob, call_pks: list[int], scorer_pks: list[int]) -> None:
    """Insert one pending task per (call, scorer), for the dispatch window to give messages to.
    On PostgreSQL the database builds the rows itself from two arrays (a cross join of unnest()),
    which is as fast as COPY and ten times faster than bulk_create; elsewhere, bulk_create."""
    if not call_pks or not scorer_pks:
        return
    if connection.vendor == "postgresql":
        table = ScoringTask._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (job_id, call_id, scorer_id, status, attempts, retried_at_attempt, "
                "error_type, error_message) "
                "SELECT %s, c, s, %s, 0, 0, '', '' FROM unnest(%s::bigint[]) AS c CROSS JOIN unnest(%s::bigint[]) AS s",
                [job.pk, states.Status.PENDING, call_pks, scorer_pks],
            )
        return
    ScoringTask.objects.bulk_create(
        (
            ScoringTask(job=job, call_id=call_pk, scorer_id=scorer_pk, status=states.Status.PENDING)
            for call_pk in call_pks
            for scorer_pk in scorer_pks
        ),
        batch_size=5_000,
    )


def job_cancel(*, user, job_id) -> int:
    """Cancel the job's tasks that have not started (queued) or are waiting to retry; running
    ones finish. Returns how many were cancelled; NotFound for a job the user may not see."""
    job = job_for_user(user=user, job_id=job_id)
    cancelled = ScoringTask.objects.filter(job=job, status__in=states.CANCELLABLE).update(
        **states.cancel_fields(timezone.now())
    )
    job_finish_if_done(job_id=job.pk)
    return cancelled


def job_retry_failed(*, user, job_id) -> int:
    """Run the job's failed tasks again, as new attempts with a fresh attempt budget; each keeps
    its attempt count and its earlier scoring calls. Returns how many were queued again; NotFound
    for a job the user may not see."""
    job = job_for_user(user=user, job_id=job_id)
    with transaction.atomic():
        retried = ScoringTask.objects.filter(job=job, status=states.Status.FAILED).update(**states.retry_fields())
        if retried:
            ScoringJob.objects.filter(pk=job.pk).update(finished_at=None, final_status="", final_counts=None)
            job_reopen(job_id=job.pk)
            transaction.on_commit(lambda: job_dispatch(job_id=job.pk))
    return retried
