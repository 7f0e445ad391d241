"""Scoring one task: the feedback it writes, the failures it records instead, and exactly-once."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from scoring.engine.run import task_claim, task_run, task_run_claimed
from scoring.models import Call, Feedback, ScoringTask
from scoring.services.jobs import job_submit
from scoring.services.objects import object_store
from scoring.weave.ids import wb_user_id_for
from tests import factories

pytest_plugins = ["tests.fakes.fixtures"]

Status = ScoringTask.Status


@pytest.fixture
def submit(user):
    def make(call_ids, refs):
        request = {"project_id": "alice/demo", "call_ids": call_ids, "scorer_refs": refs}
        return job_submit(user=user, project_id="alice/demo", call_ids=call_ids, scorer_refs=refs, request=request).job

    return make


def only_task(job) -> ScoringTask:
    return job.tasks.get()


def test_success_writes_weave_feedback(submit, user):
    """A scored pair becomes feedback in Weave's runnable shape, and the task succeeds."""
    factories.call(call_id="c1", output='{"a": 1}')
    ref = factories.scorer()
    job = submit(["c1"], [ref])
    task = only_task(job)

    assert task_run(task_id=task.pk).status == Status.SUCCEEDED

    feedback = Feedback.objects.get()
    assert feedback.feedback_type == "wandb.runnable.ValidJSONScorer"
    assert feedback.weave_ref == "weave:///alice/demo/call/c1"
    assert feedback.payload == {"output": {"json_valid": True}}
    assert feedback.runnable_ref == ref
    assert feedback.wb_user_id == wb_user_id_for(user)
    task.refresh_from_db()
    assert (task.status, task.attempts, task.error_type) == (Status.SUCCEEDED, 1, "")
    assert feedback.task_id == task.pk
    job.refresh_from_db()
    assert job.finished_at is not None


def test_scoring_call_records_inputs_and_output(submit):
    """Each scoring is recorded as a call whose ref is the feedback's call_ref."""
    factories.call(call_id="c1", output="not json")
    ref = factories.scorer()
    task = only_task(submit(["c1"], [ref]))
    task_run(task_id=task.pk)

    feedback = Feedback.objects.get()
    scoring_call = Call.objects.get(call_id=feedback.call_ref.rsplit("/", 1)[1])
    assert feedback.payload == {"output": {"json_valid": False}}
    assert scoring_call.inputs == {"self": ref, "output": "not json"}
    assert scoring_call.output == {"json_valid": False}
    assert scoring_call.attributes["weave"]["kind"] == "scorer"
    assert scoring_call.started_at <= scoring_call.ended_at


def test_redelivered_message_scores_once(submit):
    """Running the same task twice writes one feedback: the second run finds it claimed."""
    factories.call(call_id="c1")
    task = only_task(submit(["c1"], [factories.scorer()]))
    assert task_run(task_id=task.pk).status == Status.SUCCEEDED
    assert task_run(task_id=task.pk) is None
    assert Feedback.objects.count() == 1
    task.refresh_from_db()
    assert task.attempts == 1


def test_database_refuses_second_feedback_for_a_task(submit):
    """Exactly-once is a database rule: a second feedback row for one task is refused."""
    factories.call(call_id="c1")
    task = only_task(submit(["c1"], [factories.scorer()]))
    task_run(task_id=task.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        Feedback.objects.create(
            project=task.call.project, weave_ref="x", feedback_type="t", wb_user_id="u", task_id=task.pk
        )


def test_call_without_output_fails_without_feedback(submit):
    """A call that ended without output fails the task with a reason; no score."""
    factories.call(call_id="c1", output=None)
    task = only_task(submit(["c1"], [factories.scorer()]))
    assert task_run(task_id=task.pk).status == Status.FAILED
    task.refresh_from_db()
    assert (task.status, task.error_type) == (Status.FAILED, "CallHasNoOutput")
    assert "c1" in task.error_message
    assert Feedback.objects.count() == 0


def test_call_still_running_is_waited_for_without_using_attempts(submit, settings):
    """A call that has started but not ended is waited for: the task waits, polled at the
    configured interval, and the waits are not counted as attempts."""
    settings.SCORING_CALL_WAIT_POLL = 7
    factories.call(call_id="c1", ended=False)
    task = only_task(submit(["c1"], [factories.scorer()]))
    for _ in range(3):
        result = task_run(task_id=task.pk)
        assert result.status == Status.WAITING
        assert result.retry_in >= 7
    task.refresh_from_db()
    assert (task.status, task.attempts, task.error_type) == (Status.WAITING, 0, "CallNotFinished")
    assert Feedback.objects.count() == 0
    Call.objects.filter(call_id="c1").update(ended_at=timezone.now(), output="{}")
    assert task_run(task_id=task.pk).status == Status.SUCCEEDED
    task.refresh_from_db()
    assert task.attempts == 1


def test_call_that_never_ends_fails_after_the_deadline(submit, settings):
    """Past SCORING_CALL_WAIT_SECONDS after the request, a call still running fails the task."""
    settings.SCORING_CALL_WAIT_SECONDS = 0
    factories.call(call_id="c1", ended=False)
    task = only_task(submit(["c1"], [factories.scorer()]))
    assert task_run(task_id=task.pk).status == Status.FAILED
    task.refresh_from_db()
    assert task.error_type == "CallNotFinished"
    assert "did not end within" in task.error_message


def test_scorer_that_raises_fails_the_task_with_its_error(submit):
    """A scorer that raises leaves the task failed with the exception's type and message, and the
    scoring call records the exception; no feedback is written."""
    factories.call(call_id="c1", output={"not": "a string"})
    task = only_task(submit(["c1"], [factories.scorer()]))
    assert task_run(task_id=task.pk).status == Status.FAILED
    task.refresh_from_db()
    assert task.error_type == "TypeError"
    assert "must be str" in task.error_message
    assert Feedback.objects.count() == 0
    scoring_call = Call.objects.get(call_id=task.scoring_call_id)
    assert "TypeError" in scoring_call.exception
    assert scoring_call.output is None


def test_xml_scorer(submit):
    """ValidXMLScorer scores well-formed and broken XML, and a dict's "output" key."""
    factories.call(call_id="good", output="<a><b/></a>")
    factories.call(call_id="bad", output="<a><b></a>")
    factories.call(call_id="dict", output={"output": "<x/>"})
    job = submit(["good", "bad", "dict"], [factories.scorer(class_name="ValidXMLScorer")])
    for task in job.tasks.all():
        task_run(task_id=task.pk)
    scores = {f.weave_ref.rsplit("/", 1)[1]: f.payload["output"] for f in Feedback.objects.all()}
    assert scores == {"good": {"xml_valid": True}, "bad": {"xml_valid": False}, "dict": {"xml_valid": True}}


def test_task_of_a_dead_worker_is_taken_over_after_its_lease(submit):
    """A task left running by a worker that died is claimed again once its lease has expired."""
    factories.call(call_id="c1")
    task = only_task(submit(["c1"], [factories.scorer()]))
    ScoringTask.objects.filter(pk=task.pk).update(
        status=Status.RUNNING, attempts=1, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    assert task_run(task_id=task.pk) is None  # still held by a live lease
    ScoringTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert task_run(task_id=task.pk).status == Status.SUCCEEDED
    task.refresh_from_db()
    assert task.attempts == 2
    assert Feedback.objects.count() == 1


def test_job_finishes_when_its_last_task_does(submit, settings):
    """A job's finished_at is set when its last task reaches a final state, not before."""
    settings.SCORING_CALL_WAIT_SECONDS = 0  # the unfinished call fails at once
    factories.call(call_id="c1")
    factories.call(call_id="c2", ended=False)
    job = submit(["c1", "c2"], [factories.scorer()])
    first, second = job.tasks.order_by("call__call_id")
    task_run(task_id=first.pk)
    job.refresh_from_db()
    assert job.finished_at is None
    task_run(task_id=second.pk)
    job.refresh_from_db()
    assert job.finished_at is not None
    assert job.final_status == "partial"
    assert job.final_counts == {**dict.fromkeys(Status.values, 0), "succeeded": 1, "failed": 1}


def test_time_limit_waits_then_fails_after_the_last_attempt(submit, settings):
    """A scoring interrupted by its time limit waits for another attempt; after the last one the
    task fails with TimeLimitExceeded, saying so."""
    from scoring.engine.run import task_timed_out

    settings.SCORING_MAX_ATTEMPTS = 2
    factories.call(call_id="c1")
    task = only_task(submit(["c1"], [factories.scorer()]))
    ScoringTask.objects.filter(pk=task.pk).update(status=Status.RUNNING, attempts=1)
    first = task_timed_out(task_id=task.pk)
    assert first.status == Status.WAITING
    assert first.retry_in > 0
    task.refresh_from_db()
    assert (task.status, task.error_type) == (Status.WAITING, "TimeLimitExceeded")
    ScoringTask.objects.filter(pk=task.pk).update(status=Status.RUNNING, attempts=2)
    assert task_timed_out(task_id=task.pk).status == Status.FAILED
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert "Gave up after 2 attempts" in task.error_message
    assert task_timed_out(task_id=task.pk) is None  # no longer running: nothing to do


def test_task_whose_attempts_never_finish_is_failed(submit, settings):
    """A task claimed more often than allowed (each time its worker died) fails instead of
    crashing workers forever."""
    settings.SCORING_MAX_ATTEMPTS = 3
    factories.call(call_id="c1")
    task = only_task(submit(["c1"], [factories.scorer()]))
    ScoringTask.objects.filter(pk=task.pk).update(attempts=3)  # three claims that never finished
    assert task_run(task_id=task.pk).status == Status.FAILED
    task.refresh_from_db()
    assert task.error_type == "AttemptsExhausted"
    assert Feedback.objects.count() == 0


def test_call_that_ended_with_an_exception_fails_without_feedback(submit):
    """A call that ended with an exception fails its pair as CallFailed, quoting the exception;
    the scorer does not run, so there is no feedback and no scoring call."""
    call = factories.call(call_id="c1", output=None)
    Call.objects.filter(pk=call.pk).update(exception="ZeroDivisionError: division by zero")
    task = only_task(submit(["c1"], [factories.scorer()]))
    assert task_run(task_id=task.pk).status == Status.FAILED
    task.refresh_from_db()
    assert (task.status, task.error_type, task.scoring_call_id) == (Status.FAILED, "CallFailed", None)
    assert "ZeroDivisionError: division by zero" in task.error_message
    assert Feedback.objects.count() == 0
    assert list(Call.objects.values_list("call_id", flat=True)) == ["c1"]


def taken_over(task_id: int):
    """Claim a task, then let its lease expire and have another worker claim it: returns the
    stale claim and the claim that took it over."""
    stale = task_claim(task_id=task_id)
    ScoringTask.objects.filter(pk=task_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    current = task_claim(task_id=task_id)
    assert (stale.attempts, current.attempts) == (1, 2)
    return stale, current


@pytest.mark.parametrize("set_based", [False, True], ids=["portable", "set-based"])
def test_a_worker_whose_claim_was_taken_over_writes_nothing(submit, set_based):
    """A worker whose task was claimed again by another (its lease expired) scores but writes
    nothing: no feedback, no scoring call, and the task stays as the new claim left it; the new
    holder's result is then recorded once. On the portable path and the set-based one."""
    factories.call(call_id="c1")
    task = only_task(submit(["c1"], [factories.scorer()]))
    stale, current = taken_over(task.pk)
    before = ScoringTask.objects.values().get(pk=task.pk)

    assert task_run_claimed(stale, set_based=set_based) is None

    assert ScoringTask.objects.values().get(pk=task.pk) == before
    assert before["status"] == Status.RUNNING
    assert Feedback.objects.count() == 0
    assert list(Call.objects.values_list("call_id", flat=True)) == ["c1"]
    assert task_run_claimed(current, set_based=set_based).status == Status.SUCCEEDED
    task.refresh_from_db()
    assert (task.status, task.attempts) == (Status.SUCCEEDED, 2)
    assert Feedback.objects.get().task_id == task.pk
    assert Call.objects.count() == 2  # the call and the one scoring call of the holder


def test_judge_whose_model_is_in_another_project_is_refused_before_any_request(submit, openai_provider):
    """A judge of alice/demo whose model ref points into bob/other is refused without asking the
    provider (ScorerConfigError), although alice/demo holds an identical model of the same
    digest: a nested ref never leaves the scorer's project."""
    model_val = {
        "_type": "LLMStructuredCompletionModel",
        "_class_name": "LLMStructuredCompletionModel",
        "_bases": ["Model", "Object", "BaseModel"],
        "llm_model_id": "openai/gpt-4o-mini",
        "default_params": {"response_format": "json_object"},
    }
    theirs = object_store(project=factories.project("bob/other"), object_id="judge-model", val=model_val)
    ours = object_store(project=factories.project("alice/demo"), object_id="judge-model", val=model_val)
    assert ours.digest == theirs.digest
    factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
    ref = factories.scorer(
        class_name="LLMAsAJudgeScorer",
        object_id="judge",
        model=f"weave:///bob/other/object/judge-model:{theirs.digest}",
        scoring_prompt="Question: {question}\nAnswer: {output}",
    )
    task = only_task(submit(["c1"], [ref]))

    assert task_run(task_id=task.pk).status == Status.FAILED

    task.refresh_from_db()
    assert task.error_type == "ScorerConfigError"
    assert "bob/other" in task.error_message and "alice/demo" in task.error_message
    assert openai_provider.requests == []
    assert Feedback.objects.count() == 0
