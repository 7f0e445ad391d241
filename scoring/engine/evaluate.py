"""Applying a scorer to a claimed task's call: what every path of the engine shares. It reads the
scorer (cached per process) and writes nothing; the verdict says what to record."""

import traceback
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.utils import timezone

from scoring.engine import states
from scoring.engine.spend import TaskMeter
from scoring.engine.states import Status
from scoring.models import Object
from scoring.scorers import Scorer, classifier, scorer_class_for
from scoring.scorers.base import (
    BudgetExhausted,
    MissingArgument,
    Outcome,
    RetryableError,
    ScorerConfigError,
    ScorerFailed,
    ScoringContext,
    SpendMeter,
)
from scoring.weave.ids import uuid7
from scoring.weave.refs import InvalidRef, call_ref_uri, object_ref_uri, parse_object_ref
from scoring.weave.schemas import call_schema


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
    retried_at_attempt: int
    job_id: uuid.UUID
    requested_at: datetime  # when the job was submitted: calls not yet ended are waited for from then
    wb_user_id: str
    project_pk: int
    project_id: str  # "entity/project"
    scorer_pk: int
    call: "CallRow"
    trigger_ref: str | None = None  # the monitor whose job this is
    traced: bool = True  # False (a monitor's is_traced): no scoring call is recorded
    taken_over: bool = False  # claimed (or read) while running under an expired lease


@dataclass(frozen=True, slots=True)
class CallRow:
    """The scored call, as read for scoring (plain values: no model instance on the hot path)."""

    call_id: str
    op_name: str
    display_name: str | None
    trace_id: str
    parent_id: str | None
    started_at: datetime | None
    ended_at: datetime | None
    attributes: dict
    inputs: dict
    output: Any
    exception: str | None
    summary: dict | None


CALL_FIELDS = tuple(f.name for f in fields(CallRow))


@dataclass(frozen=True)
class TaskResult:
    """How a run ended: the task's status, and for a waiting task the delay until its retry."""

    status: str
    retry_in: float | None = None


@lru_cache(maxsize=4096)
def _object_val(project_pk: int, object_id: str, digest: str) -> Any:
    # An object version never changes (its digest is its content), so it is cached per process.
    obj = Object.objects.only("val").filter(project_id=project_pk, object_id=object_id, digest=digest).first()
    if obj is None:
        raise ScorerConfigError(f"Object {object_id}:{digest} does not exist in this project")
    return obj.val


@lru_cache(maxsize=1024)
def _scorer_key(scorer_pk: int) -> tuple[int, str, str]:
    obj = Object.objects.only("project_id", "object_id", "digest").get(pk=scorer_pk)
    return obj.project_id, obj.object_id, obj.digest


@lru_cache(maxsize=1024)
def scorer_load(*, scorer_pk: int, project_id: str) -> tuple[Scorer, str]:
    """The scorer for a stored object (nested refs resolved from the same project), and its ref.
    Cached per process: an object version never changes, and a scorer is not changed after it is
    built, so threads share it."""
    project_pk, object_id, digest = _scorer_key(scorer_pk)
    val = _object_val(project_pk, object_id, digest)
    scorer_class = scorer_class_for(val)
    if scorer_class is None:
        raise ScorerConfigError(f"Object {object_id}:{digest} is not a supported scorer")

    def resolve(ref: str) -> Any:
        try:
            parsed = parse_object_ref(ref)
        except InvalidRef as exc:
            raise ScorerConfigError(f"Invalid nested ref {ref!r}: {exc}") from None
        if parsed.project_id != project_id or parsed.extra:
            raise ScorerConfigError(f"Nested ref {ref!r} must be a whole object of project {project_id}")
        return _object_val(project_pk, parsed.name, parsed.version)

    scorer = scorer_class(val, resolve)
    scorer.object_id = object_id
    return scorer, object_ref_uri(project_id, object_id, digest)


def scorer_load_or_none(*, scorer_pk: int, project_id: str) -> tuple[Scorer, str] | None:
    """scorer_load, or None when the stored object cannot be used (task_evaluate says why)."""
    try:
        return scorer_load(scorer_pk=scorer_pk, project_id=project_id)
    except ScorerConfigError:
        return None


class CallNotFinished(Exception):
    """The call has started but not ended: there is no output to score yet."""


def _call_output(call: CallRow) -> Any:
    if call.ended_at is None:
        raise CallNotFinished
    if call.exception:
        raise PermanentTaskError("CallFailed", f"Call {call.call_id} ended with an exception: {call.exception[:500]}")
    if call.output is None:
        raise PermanentTaskError("CallHasNoOutput", f"Call {call.call_id} ended without an output")
    return call.output


@dataclass
class Verdict:
    """What scoring a claimed task came to, before anything is written: succeeded (with its
    scoring call and feedback), failed (with its reason, and the scoring call if the scorer ran),
    or waiting (a transient failure, to be tried again)."""

    status: str
    error_type: str = ""
    message: str = ""
    scoring_call: dict | None = None  # a Call row, field name -> value
    feedback: dict | None = None  # a Feedback row, field name -> value
    retry_after: float | None = None
    counts: bool = True  # False: a wait that was no attempt of the scorer (the call still runs)


def evaluate(*, task: ClaimedTask, scorer_and_ref: tuple[Scorer, str] | None = None) -> Verdict:
    """Apply the scorer to the task's call; writes nothing."""
    step = _prepare(task, scorer_and_ref)
    if isinstance(step, Verdict):
        return _untraced(task, step)
    context = ScoringContext(
        project_id=task.project_id,
        call_id=task.call.call_id,
        scoring_call_id=step.scoring_call_id,
        task_key=f"{task.job_id}:{task.id}",
        # Only scorers that send the call elsewhere (remote scorers) need it in Weave's shape.
        call=call_schema(task.project_id, {f: getattr(task.call, f) for f in CALL_FIELDS}) if step.scorer.slow else {},
        scorer_ref=step.scorer_ref,
        meter=TaskMeter(task) if step.scorer.metered else SpendMeter(),
    )
    started_at = timezone.now()
    try:
        outcome = step.scorer.run(step.arguments, context)
    except Exception as exc:
        return _untraced(task, _verdict(task, step, started_at, exception=exc))
    return _untraced(task, _verdict(task, step, started_at, outcome=outcome))


def evaluate_together(*, tasks: list[ClaimedTask]) -> list[Verdict]:
    """Apply the LLM judges of claimed tasks of one call (judges with one classifier.merge_key) in
    one provider request, a ClassifierMonitor's; one verdict per task, each as
    `evaluate` makes it. A task that cannot be scored, or whose judge's share of the answer is
    missing or malformed, fails alone; a request that failed is every task's failure (or wait)."""
    verdicts: list[Verdict | None] = [None] * len(tasks)
    prepared = []
    for index, task in enumerate(tasks):
        step = _prepare(task, None)
        if isinstance(step, Verdict):
            verdicts[index] = step
        else:
            prepared.append((index, task, step))
    if prepared:
        call = tasks[0].call
        started_at = timezone.now()
        try:
            judgements = classifier.classify(
                [(step.scorer, step.arguments) for _, _, step in prepared],
                {"op_name": call.op_name, "inputs": call.inputs, "output": call.output, "exception": call.exception},
                # The request's spend is the first task's, as its usage is.
                meter=TaskMeter(prepared[0][1]),
            )
        except Exception as exc:
            for index, task, step in prepared:
                verdicts[index] = _verdict(task, step, started_at, exception=exc)
        else:
            for (index, task, step), judgement in zip(prepared, judgements, strict=True):
                verdicts[index] = _verdict(task, step, started_at, outcome=judgement.outcome, exception=judgement.error)
    return [_untraced(task, verdict) for task, verdict in zip(tasks, verdicts, strict=True)]


def _untraced(task: ClaimedTask, verdict: Verdict) -> Verdict:
    if not task.traced:
        verdict.scoring_call = None
        if verdict.feedback is not None:
            verdict.feedback["call_ref"] = None
    return verdict


@dataclass(frozen=True)
class _Ready:
    """A task that may be scored: its scorer, the scorer's ref and arguments, its scoring call's id."""

    scorer: Scorer
    scorer_ref: str
    arguments: dict
    scoring_call_id: str


def _prepare(task: ClaimedTask, scorer_and_ref: tuple[Scorer, str] | None) -> "Verdict | _Ready":
    """What is needed to run the task's scorer, or the verdict of a task that cannot run it."""
    attempts = task.attempts - task.retried_at_attempt
    if attempts > settings.SCORING_MAX_ATTEMPTS:
        # Earlier attempts were claimed but never finished: their worker died or was stopped.
        message = f"Gave up after {attempts - 1} attempts that never finished (the worker died or was stopped)"
        return Verdict(Status.FAILED, "AttemptsExhausted", message)
    try:
        scorer, scorer_ref = scorer_and_ref or scorer_load(scorer_pk=task.scorer_pk, project_id=task.project_id)
        arguments = scorer.arguments(_call_output(task.call), task.call.inputs or {})
    except CallNotFinished:
        return _wait_for_call(task)
    except (ScorerConfigError, MissingArgument) as exc:
        return Verdict(Status.FAILED, type(exc).__name__, str(exc))
    except PermanentTaskError as exc:
        return Verdict(Status.FAILED, exc.error_type, str(exc))
    return _Ready(scorer, scorer_ref, arguments, uuid7())


def _verdict(
    task: ClaimedTask,
    step: _Ready,
    started_at: datetime,
    *,
    outcome: Outcome | None = None,
    exception: BaseException | None = None,
) -> Verdict:
    """The verdict of a scorer's run: its outcome, or the exception it raised."""
    scorer, scorer_ref, arguments, scoring_call_id = step.scorer, step.scorer_ref, step.arguments, step.scoring_call_id
    if isinstance(exception, BudgetExhausted):
        return Verdict(Status.CANCELLED, states.BUDGET_EXHAUSTED, str(exception))
    if isinstance(exception, RetryableError):
        attempts = task.attempts - task.retried_at_attempt
        if not exception.counts:  # a wait that is no attempt of the scorer (a blocked provider, say)
            return Verdict(
                Status.WAITING, exception.error_type, str(exception), retry_after=exception.retry_after, counts=False
            )
        if attempts < settings.SCORING_MAX_ATTEMPTS:
            return Verdict(Status.WAITING, exception.error_type, str(exception), retry_after=exception.retry_after)
        scoring_call = _scoring_call(
            task, scorer, scorer_ref, scoring_call_id, arguments, started_at, exception=exception
        )
        return Verdict(
            Status.FAILED, exception.error_type, f"Gave up after {attempts} attempts: {exception}", scoring_call
        )
    if exception is not None:
        error_type = exception.error_type if isinstance(exception, ScorerFailed) else type(exception).__name__
        scoring_call = _scoring_call(
            task, scorer, scorer_ref, scoring_call_id, arguments, started_at, exception=exception
        )
        return Verdict(Status.FAILED, error_type, str(exception) or repr(exception), scoring_call)
    scoring_call = _scoring_call(task, scorer, scorer_ref, scoring_call_id, arguments, started_at, outcome=outcome)
    feedback = {
        "id": uuid7(),
        "project_id": task.project_pk,
        "weave_ref": call_ref_uri(task.project_id, task.call.call_id),
        "feedback_type": f"wandb.runnable.{scorer.name}",
        "payload": {"output": outcome.output},
        "runnable_ref": scorer_ref,
        "call_ref": call_ref_uri(task.project_id, scoring_call_id),
        "wb_user_id": task.wb_user_id,
        "trigger_ref": task.trigger_ref,
        "task_id": task.id,
    }
    return Verdict(Status.SUCCEEDED, scoring_call=scoring_call, feedback=feedback)


def scorer_seconds(verdict: Verdict) -> float | None:
    """How long the scorer ran for this verdict, from its scoring call (None if it did not run)."""
    call = verdict.scoring_call
    return None if call is None else (call["ended_at"] - call["started_at"]).total_seconds()


def _wait_for_call(task: ClaimedTask) -> Verdict:
    """A call still running when it is to be scored is waited for, up to SCORING_CALL_WAIT_SECONDS
    after the job was submitted; the waits do not count as attempts."""
    deadline = settings.SCORING_CALL_WAIT_SECONDS
    call_id = task.call.call_id
    if timezone.now() - task.requested_at < timedelta(seconds=deadline):
        message = f"Call {call_id} has not ended yet; waiting for it (up to {deadline:g}s after the request)"
        return Verdict(
            Status.WAITING, "CallNotFinished", message, retry_after=settings.SCORING_CALL_WAIT_POLL, counts=False
        )
    message = f"Call {call_id} did not end within {deadline:g}s of the request, so it has no output to score"
    return Verdict(Status.FAILED, "CallNotFinished", message)


def _scoring_call(
    task: ClaimedTask,
    scorer: Scorer,
    scorer_ref: str,
    call_id: str,
    arguments: dict,
    started_at: datetime,
    *,
    outcome: Outcome | None = None,
    exception: BaseException | None = None,
) -> dict:
    """The call (a row of Call fields) that records this scoring run: the scorer's inputs, its
    output or exception, and the token usage of any model it asked."""
    op_ref = scorer.val.get("score")
    op_name = op_ref if isinstance(op_ref, str) and op_ref.startswith("weave:///") else f"{scorer.class_name}.score"
    summary: dict[str, Any] = {
        "status_counts": {"success": int(exception is None), "error": int(exception is not None)}
    }
    if outcome is not None and outcome.usage:
        summary["usage"] = outcome.usage
    if outcome is not None and outcome.costs:
        summary["weave"] = {"costs": outcome.costs}
    return {
        "project_id": task.project_pk,
        "call_id": call_id,
        "trace_id": uuid7(),
        "op_name": op_name,
        "display_name": f"{scorer.name}.score",
        "started_at": started_at,
        "ended_at": timezone.now(),
        "attributes": {"weave": {"kind": "scorer", "source": "call-scoring-service"}},
        "inputs": {"self": scorer_ref, **arguments},
        "output": None if outcome is None else outcome.output,
        "exception": None if exception is None else "".join(traceback.format_exception_only(exception)).strip(),
        "summary": summary,
        "wb_user_id": task.wb_user_id,
    }
