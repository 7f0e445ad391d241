"""Scoring one (call, scorer) task: claim it, apply the scorer to the call, and record the result
as feedback (or the failure on the task) exactly once."""

import logging
import traceback
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from scoring.models import Call, Feedback, Object, ScoringJob, ScoringTask
from scoring.refs import call_ref_uri, object_ref_uri
from scoring.scorers import Scorer, scorer_class_for
from scoring.scorers.base import MissingArgument, ScorerConfigError

logger = logging.getLogger(__name__)

Status = ScoringTask.Status
UNFINISHED = (Status.QUEUED, Status.RUNNING, Status.WAITING)
ERROR_MESSAGE_LIMIT = 4_000


class PermanentTaskError(Exception):
    """The task cannot succeed however often it is tried; `error_type` names why."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


@dataclass(frozen=True)
class ClaimedTask:
    """A task this worker holds, with what is needed to score it."""

    id: int
    attempts: int
    job_id: uuid.UUID
    wb_user_id: str
    project_id: int
    project_name: str
    scorer_pk: int
    call: Call


def task_claim(*, task_id: int) -> ClaimedTask | None:
    """Take the task for this worker, or None if it is finished, cancelled or held by a live
    worker: a redelivered message never scores twice. A running task whose lease expired was
    abandoned by a dead worker and may be taken over."""
    now = timezone.now()
    claimable = Q(status__in=[Status.QUEUED, Status.WAITING]) | Q(status=Status.RUNNING, lease_expires_at__lt=now)
    claimed = ScoringTask.objects.filter(claimable, pk=task_id).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        lease_expires_at=now + timedelta(seconds=settings.SCORING_TASK_LEASE_SECONDS),
    )
    if not claimed:
        return None
    task = (
        ScoringTask.objects.select_related("call", "job__project")
        .only(
            "attempts",
            "scorer_id",
            "job__wb_user_id",
            "job__project__entity",
            "job__project__name",
            "call__call_id",
            "call__project_id",
            "call__inputs",
            "call__output",
            "call__ended_at",
            "call__exception",
        )
        .get(pk=task_id)
    )
    return ClaimedTask(
        id=task.pk,
        attempts=task.attempts,
        job_id=task.job_id,
        wb_user_id=task.job.wb_user_id,
        project_id=task.job.project_id,
        project_name=task.job.project.project_id,
        scorer_pk=task.scorer_id,
        call=task.call,
    )


@lru_cache(maxsize=1024)
def _scorer_object(scorer_pk: int) -> tuple[str, str, dict]:
    # A stored object version never changes (its digest is its content), so it is cached.
    obj = Object.objects.only("object_id", "digest", "val").get(pk=scorer_pk)
    return obj.object_id, obj.digest, obj.val


def scorer_load(*, scorer_pk: int) -> tuple[Scorer, str]:
    """The scorer instance for a stored object, and its ref."""
    object_id, digest, val = _scorer_object(scorer_pk)
    scorer_class = scorer_class_for(val)
    if scorer_class is None:
        raise PermanentTaskError("ScorerConfigError", f"Object {object_id}:{digest} is not a supported scorer")
    return scorer_class(val), digest


def _call_output(call: Call) -> Any:
    if call.ended_at is None:
        raise PermanentTaskError("CallNotFinished", f"Call {call.call_id} has not ended, so it has no output to score")
    if call.exception:
        raise PermanentTaskError("CallFailed", f"Call {call.call_id} ended with an exception: {call.exception[:500]}")
    if call.output is None:
        raise PermanentTaskError("CallHasNoOutput", f"Call {call.call_id} ended without an output")
    return call.output


def task_run(*, task_id: int) -> str | None:
    """Score one task end to end; returns its final status, or None if it was not claimed."""
    task = task_claim(task_id=task_id)
    if task is None:
        return None
    try:
        scorer, digest = scorer_load(scorer_pk=task.scorer_pk)
        scorer_ref = object_ref_uri(task.project_name, _scorer_object(task.scorer_pk)[0], digest)
        arguments = scorer.arguments(_call_output(task.call), task.call.inputs or {})
    except (ScorerConfigError, MissingArgument) as exc:
        return task_fail(task=task, error_type=type(exc).__name__, message=str(exc))
    except PermanentTaskError as exc:
        return task_fail(task=task, error_type=exc.error_type, message=str(exc))

    started_at = timezone.now()
    try:
        result = scorer.score(**arguments)
    except Exception as exc:
        ended_at = timezone.now()
        scoring_call = _scoring_call(task, scorer, scorer_ref, arguments, started_at, ended_at, exception=exc)
        return task_fail(
            task=task, error_type=type(exc).__name__, message=str(exc) or repr(exc), scoring_call=scoring_call
        )
    ended_at = timezone.now()
    scoring_call = _scoring_call(task, scorer, scorer_ref, arguments, started_at, ended_at, output=result)
    return task_succeed(task=task, scorer=scorer, scorer_ref=scorer_ref, result=result, scoring_call=scoring_call)


def _scoring_call(task, scorer, scorer_ref, arguments, started_at, ended_at, *, output=None, exception=None) -> Call:
    """The call that records this scoring run: the scorer's inputs, its output or exception."""
    op_ref = scorer.val.get("score")
    op_name = op_ref if isinstance(op_ref, str) and op_ref.startswith("weave:///") else f"{scorer.class_name}.score"
    trace_id = str(uuid.uuid4())
    return Call(
        project_id=task.project_id,
        call_id=str(uuid.uuid4()),
        trace_id=trace_id,
        op_name=op_name,
        display_name=f"{scorer.name}.score",
        started_at=started_at,
        ended_at=ended_at,
        attributes={"weave": {"kind": "scorer", "source": "call-scoring-service"}},
        inputs={"self": scorer_ref, **arguments},
        output=output,
        exception=None if exception is None else "".join(traceback.format_exception_only(exception)).strip(),
        summary={"status_counts": {"success": int(exception is None), "error": int(exception is not None)}},
        wb_user_id=task.wb_user_id,
    )


def _finish(task: ClaimedTask, **fields) -> int:
    """Move a task this worker holds to a final state; 0 if it no longer holds it."""
    return ScoringTask.objects.filter(pk=task.id, status=Status.RUNNING, attempts=task.attempts).update(
        finished_at=timezone.now(), lease_expires_at=None, **fields
    )


class _LostClaim(Exception):
    pass


def task_succeed(*, task: ClaimedTask, scorer: Scorer, scorer_ref: str, result: Any, scoring_call: Call) -> str | None:
    """Write the feedback and mark the task succeeded, in one transaction."""
    try:
        with transaction.atomic():
            scoring_call.save(force_insert=True)
            Feedback.objects.create(
                project_id=task.project_id,
                weave_ref=call_ref_uri(task.project_name, task.call.call_id),
                feedback_type=f"wandb.runnable.{scorer.name}",
                payload={"output": result},
                runnable_ref=scorer_ref,
                call_ref=call_ref_uri(task.project_name, scoring_call.call_id),
                wb_user_id=task.wb_user_id,
                task_id=task.id,
            )
            if not _finish(
                task, status=Status.SUCCEEDED, scoring_call_id=scoring_call.call_id, error_type="", error_message=""
            ):
                raise _LostClaim
    except (_LostClaim, IntegrityError):
        # Another worker took the task over (our lease expired) or already recorded its feedback.
        logger.warning("Task %s was finished elsewhere; this result is dropped", task.id)
        return None
    _job_finish_if_done(task.job_id)
    return Status.SUCCEEDED


def task_fail(*, task: ClaimedTask, error_type: str, message: str, scoring_call: Call | None = None) -> str | None:
    """Record a failure on the task (and on the scoring call, if the scorer ran); no feedback."""
    with transaction.atomic():
        if scoring_call is not None:
            scoring_call.save(force_insert=True)
        finished = _finish(
            task,
            status=Status.FAILED,
            error_type=error_type[:128],
            error_message=message[:ERROR_MESSAGE_LIMIT],
            scoring_call_id=scoring_call.call_id if scoring_call is not None else None,
        )
        if not finished:
            transaction.set_rollback(True)
            return None
    _job_finish_if_done(task.job_id)
    return Status.FAILED


def _job_finish_if_done(job_id) -> None:
    # Checked after commit, so that of two tasks finishing together the later one sees both.
    if not ScoringTask.objects.filter(job_id=job_id, status__in=UNFINISHED).exists():
        ScoringJob.objects.filter(pk=job_id, finished_at__isnull=True).update(finished_at=timezone.now())
