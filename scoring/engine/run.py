"""Scoring one task, read top to bottom: claim it, apply its scorer, record the verdict exactly
once (fenced on the claim), and finish its job when it was the last. The portable path (any
database); on PostgreSQL the worker scores through scoring.engine.batch, which hands the tasks of
slow scorers back to `task_run_claimed`."""

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from scoring import logs, metrics
from scoring.engine import batch, classify, dispatch, leases, states
from scoring.engine.evaluate import (
    CALL_FIELDS,
    CallRow,
    ClaimedTask,
    TaskResult,
    Verdict,
    evaluate,
    evaluate_together,
    scorer_load_or_none,
    scorer_seconds,
)
from scoring.engine.jobs import job_finish_if_done, jobs_finish_if_done
from scoring.engine.states import Status
from scoring.models import Call, Feedback, Object, ScoringTask

logger = logging.getLogger(__name__)


def task_run(*, task_id: int) -> TaskResult | None:
    """Score one task end to end; returns how it ended, or None if it was not claimed."""
    task = task_claim(task_id=task_id)
    if task is None:
        return None
    return task_run_claimed(task)


def task_claim(*, task_id: int) -> ClaimedTask | None:
    """Take the task for this worker, or None if it is finished, cancelled or held by a live
    worker: a redelivered message never scores twice."""
    now = timezone.now()
    # A takeover first (a running task under an expired lease), so that it can be counted: the
    # ORM's UPDATE does not say what the row was.
    task = ScoringTask.objects.filter(pk=task_id)
    taken_over = bool(task.filter(states.abandoned(now)).update(**states.claim_fields(now)))
    if not taken_over and not task.filter(states.claimable(now)).update(**states.claim_fields(now)):
        return None
    if taken_over:
        metrics.lease_takeover()
    task = (
        ScoringTask.objects.select_related("call", "job__project")
        .only(
            "attempts",
            "retried_at_attempt",
            "scorer_id",
            "job__wb_user_id",
            "job__trigger_ref",
            "job__is_traced",
            "job__created_at",
            "job__project__entity",
            "job__project__name",
            *(f"call__{f}" for f in CALL_FIELDS),
        )
        .get(pk=task_id)
    )
    return ClaimedTask(
        id=task.pk,
        attempts=task.attempts,
        retried_at_attempt=task.retried_at_attempt,
        job_id=task.job_id,
        requested_at=task.job.created_at,
        wb_user_id=task.job.wb_user_id,
        project_pk=task.job.project_id,
        project_id=task.job.project.project_id,
        scorer_pk=task.scorer_id,
        call=CallRow(**{f: getattr(task.call, f) for f in CALL_FIELDS}),
        trigger_ref=task.job.trigger_ref,
        traced=task.job.is_traced,
        taken_over=taken_over,
    )


def task_run_claimed(task: ClaimedTask, *, set_based: bool = False) -> TaskResult | None:
    """Score a task this worker holds, renewing its lease while the scorer runs, and record the
    verdict: a result with the batch path's one statement when `set_based` (PostgreSQL), else
    with the ORM; a wait always with the ORM."""
    others = classify.siblings(task)
    if others is not None:
        return task_run_together([task, *_claim_many(others)], own=task.id, set_based=set_based)
    leases.lease_hold(task.id, task.attempts)
    try:
        with logs.task_context(task_id=task.id, job_id=task.job_id):
            verdict = evaluate(task=task)
            if verdict.status == Status.WAITING:
                return task_wait(task=task, verdict=verdict)
            if set_based:
                if task.id not in batch.tasks_record_many([(task, verdict)], claimed=True):
                    return None  # another worker took the task over (our lease expired)
                jobs_finish_if_done({task.job_id})
                result = TaskResult(verdict.status)
            else:
                result = task_record(task=task, verdict=verdict)
            if result is not None:
                scorer = scorer_load_or_none(scorer_pk=task.scorer_pk, project_id=task.project_id)
                metrics.results_recorded([(scorer and scorer[0].class_name, verdict.status, scorer_seconds(verdict))])
            return result
    finally:
        leases.lease_release(task.id)


def _claim_many(task_ids: list[int]) -> list[ClaimedTask]:
    if not task_ids:
        return []
    if connection.vendor == "postgresql":
        return batch.tasks_claim_many(task_ids)
    return [task for task in map(lambda task_id: task_claim(task_id=task_id), task_ids) if task is not None]


def task_run_together(tasks: list[ClaimedTask], *, own: int, set_based: bool) -> TaskResult | None:
    """Score held tasks of a ClassifierMonitor's judges on one call with one provider request, and
    record each verdict fenced on its own claim, as task_run_claimed does one. Returns how the
    task `own` (the message's) ended; the retries of the others are sent here, as their messages
    (which find them taken) would have."""
    for task in tasks:
        leases.lease_hold(task.id, task.attempts)
    try:
        verdicts = evaluate_together(tasks=tasks)
        results: dict[int, TaskResult | None] = {}
        finals = []
        for task, verdict in zip(tasks, verdicts, strict=True):
            if verdict.status == Status.WAITING:
                results[task.id] = task_wait(task=task, verdict=verdict)
            elif set_based:
                finals.append((task, verdict))
            else:
                results[task.id] = task_record(task=task, verdict=verdict)
        if finals:
            recorded = batch.tasks_record_many(finals, claimed=True)
            results.update((task.id, TaskResult(v.status) if task.id in recorded else None) for task, v in finals)
            jobs_finish_if_done({task.job_id for task, _ in finals})
        for task in tasks:
            result = results[task.id]
            if task.id != own and result is not None and result.retry_in is not None:
                dispatch.task_send_later(task_id=task.id, delay_seconds=result.retry_in)
        return results.get(own)
    finally:
        for task in tasks:
            leases.lease_release(task.id)


class _LostClaim(Exception):
    pass


def task_record(*, task: ClaimedTask, verdict: Verdict) -> TaskResult | None:
    """Write a result (succeeded or failed) for a task this worker holds, in one transaction: the
    scoring call (if the scorer ran), the feedback (if it succeeded) and the task's end, fenced on
    the claim. None if the task was taken over meanwhile: then nothing of this run is kept."""
    try:
        with transaction.atomic():
            if verdict.scoring_call is not None:
                Call(**verdict.scoring_call).save(force_insert=True)
            if verdict.feedback is not None:
                Feedback(**verdict.feedback).save(force_insert=True)
            fields = states.finish_fields(
                timezone.now(),
                status=verdict.status,
                error_type=verdict.error_type,
                message=verdict.message,
                scoring_call_id=verdict.scoring_call["call_id"] if verdict.scoring_call else None,
            )
            if not ScoringTask.objects.filter(states.held(task.id, task.attempts)).update(**fields):
                raise _LostClaim
    except (_LostClaim, IntegrityError):
        # Another worker took the task over (our lease expired) and recorded its own result.
        logger.warning("Task %s was finished elsewhere; this result is dropped", task.id)
        return None
    job_finish_if_done(job_id=task.job_id)
    return TaskResult(verdict.status)


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """Seconds until the next attempt: exponential backoff with full jitter, never sooner than
    the other side asked for."""
    cap = min(settings.SCORING_RETRY_MAX_DELAY, settings.SCORING_RETRY_BASE_DELAY * 2 ** max(attempts - 1, 0))
    delay = random.uniform(cap / 2, cap)
    return max(delay, retry_after or 0.0)


def task_wait(*, task: ClaimedTask, verdict: Verdict) -> TaskResult | None:
    """Put a held task back to wait for its next attempt, keeping the error that caused the wait."""
    delay = retry_delay(task.attempts - task.retried_at_attempt, verdict.retry_after)
    fields = states.wait_fields(
        timezone.now() + timedelta(seconds=delay),
        error_type=verdict.error_type,
        message=verdict.message,
        counts=verdict.counts,
    )
    released = ScoringTask.objects.filter(states.held(task.id, task.attempts)).update(**fields)
    if not released:
        return None
    metrics.task_retry(verdict.error_type)
    return TaskResult(Status.WAITING, retry_in=delay)


def task_timed_out(*, task_id: int) -> TaskResult | None:
    """The scoring ran over its family's time limit and its thread was interrupted: the task
    waits for another attempt, or fails once it has had them all."""
    task = (
        ScoringTask.objects.filter(pk=task_id, status=Status.RUNNING)
        .only("attempts", "retried_at_attempt", "scorer_id", "job_id")
        .first()
    )
    if task is None:
        return None
    attempts = task.attempts - task.retried_at_attempt
    held = ScoringTask.objects.filter(states.held(task_id, task.attempts))
    reason = "The scoring took longer than its time limit (SCORING_TIME_LIMITS)"
    now = timezone.now()
    if attempts >= settings.SCORING_MAX_ATTEMPTS:
        message = f"Gave up after {attempts} attempts: {reason}"
        fields = states.finish_fields(now, status=Status.FAILED, error_type="TimeLimitExceeded", message=message)
        fields.pop("scoring_call_id")  # an interrupted scoring recorded none; keep an earlier one
        if held.update(**fields):
            job_finish_if_done(job_id=task.job_id)
            scorer_class = Object.objects.filter(pk=task.scorer_id).values_list("leaf_object_class", flat=True).first()
            metrics.results_recorded([(scorer_class, Status.FAILED, None)])
            return TaskResult(Status.FAILED)
        return None
    delay = retry_delay(attempts)
    fields = states.wait_fields(now + timedelta(seconds=delay), error_type="TimeLimitExceeded", message=reason)
    if held.update(**fields):
        metrics.task_retry("TimeLimitExceeded")
        return TaskResult(Status.WAITING, retry_in=delay)
    return None


def task_process(*, task_id: int, committer: batch.GroupCommitter | None = None) -> TaskResult | None:
    """The worker's way to score a task: on PostgreSQL through the process's group committer
    (scoring.engine.batch), which hands the task back when it is one for this thread to score;
    elsewhere one task at a time (SQLite serialises writers anyway)."""
    if committer is None:
        if connection.vendor != "postgresql" or not settings.SCORING_GROUP_COMMIT:
            return task_run(task_id=task_id)
        committer = batch.group_committer()
    outcome = committer.run(task_id)
    if isinstance(outcome, list):
        return task_run_together(outcome, own=task_id, set_based=True)
    if isinstance(outcome, ClaimedTask):
        return task_run_claimed(outcome, set_based=True)
    return outcome
