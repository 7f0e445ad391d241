"""Group commit: claiming many tasks in one statement, recording many verdicts in one transaction,
and the per-process committer that actor threads share (real PostgreSQL, real threads)."""

import threading

import pytest
from django.db import DataError, connection

from scoring import scorers
from scoring.engine import batch
from scoring.engine.evaluate import evaluate as task_evaluate
from scoring.engine.run import task_process
from scoring.models import Call, Feedback, ScoringTask
from scoring.scorers.base import Outcome, Scorer
from scoring.services.jobs import job_submit
from tests import factories

Status = ScoringTask.Status


@pytest.fixture
def make_job(user):
    def make(outputs: dict, class_name="ValidJSONScorer"):
        for call_id, output in outputs.items():
            factories.call(call_id=call_id, output=output, inputs={"q": call_id})
        ref = factories.scorer(class_name=class_name)
        ids = list(outputs)
        request = {"project_id": "alice/demo", "call_ids": ids, "scorer_refs": [ref]}
        return job_submit(user=user, project_id="alice/demo", call_ids=ids, scorer_refs=[ref], request=request).job

    return make


def ids_of(job) -> list[int]:
    return sorted(job.tasks.values_list("pk", flat=True))


def test_claim_many_claims_only_claimable_tasks(make_job, db):
    """One statement claims the queued tasks among the ids, with their calls' data decoded."""
    job = make_job({"a": "prose", "b": '{"x": 1}', "c": "[]"})
    first, second, third = ids_of(job)
    ScoringTask.objects.filter(pk=third).update(status=Status.SUCCEEDED)
    claimed = {t.id: t for t in batch.tasks_claim_many([first, second, third])}
    assert set(claimed) == {first, second}
    assert claimed[first].call.output == "prose"  # JSON text decoded, as the ORM does
    assert claimed[first].call.inputs == {"q": "a"}
    assert claimed[first].attempts == 1
    assert claimed[first].project_id == "alice/demo"
    assert batch.tasks_claim_many([first, second]) == []  # now held


def test_record_many_writes_feedback_and_calls_for_held_tasks(make_job, db):
    """Verdicts are recorded in one go; a task taken over by another worker gets nothing."""
    job = make_job({"a": "prose", "b": '{"x": 1}', "c": {"not": "text"}})
    claimed = sorted(batch.tasks_claim_many(ids_of(job)), key=lambda t: t.id)  # in any order: sort as a, b, c
    verdicts = [(t, task_evaluate(task=t)) for t in claimed]
    lost = claimed[0]
    ScoringTask.objects.filter(pk=lost.id).update(attempts=5)  # taken over meanwhile

    recorded = batch.tasks_record_many(verdicts)

    assert recorded == {t.id for t in claimed[1:]}
    statuses = dict(ScoringTask.objects.filter(job=job).values_list("call__call_id", "status"))
    assert statuses == {"a": Status.RUNNING, "b": Status.SUCCEEDED, "c": Status.FAILED}
    feedback = Feedback.objects.get()
    assert (feedback.weave_ref, feedback.payload) == ("weave:///alice/demo/call/b", {"output": {"json_valid": True}})
    failed = ScoringTask.objects.get(job=job, status=Status.FAILED)
    assert failed.error_type == "TypeError"
    assert Call.objects.filter(call_id__in=[failed.scoring_call_id, feedback.call_ref.rsplit("/", 1)[1]]).count() == 2


@pytest.fixture
def committer():
    """A committer of the test's own, whose writer thread (and its connection) ends with the test."""
    made = []

    def make(**kwargs):
        made.append(batch.GroupCommitter(**kwargs))
        return made[-1]

    yield make
    for c in made:
        c.stop()


def run_in_threads(committer, task_ids):
    results, errors = {}, {}

    def run(task_id):
        try:
            results[task_id] = task_process(task_id=task_id, committer=committer)
        except BaseException as exc:
            errors[task_id] = exc
        finally:
            connection.close()  # as Dramatiq's DbConnectionsMiddleware does after each message

    threads = [threading.Thread(target=run, args=(task_id,)) for task_id in task_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


def test_committer_scores_tasks_from_many_threads_once(make_job, transactional_db, committer):
    """Tasks run from many threads at once (each twice, as redelivered messages) are each scored
    once, and the job finishes."""
    job = make_job({f"c{i}": "{}" if i % 3 else "prose" for i in range(30)})
    task_ids = ids_of(job)
    results, errors = run_in_threads(committer(), task_ids + task_ids)
    assert errors == {}
    assert Feedback.objects.count() == 30
    assert set(ScoringTask.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}
    assert set(ScoringTask.objects.values_list("attempts", flat=True)) == {1}
    job.refresh_from_db()
    assert job.final_status == "succeeded"


class SlowEcho(Scorer):
    """A test scorer marked slow: its tasks must be handed back to their own thread."""

    class_name = "SlowEcho"
    slow = True
    threads: set = set()

    def run(self, arguments, context):
        SlowEcho.threads.add(threading.current_thread().name)
        return Outcome({"echo": arguments["output"]})


def test_committer_hands_slow_scorers_back_to_their_thread(make_job, transactional_db, monkeypatch, committer):
    """A slow scorer's task is claimed by the committer but scored in the calling thread."""
    monkeypatch.setitem(scorers.REGISTRY, "SlowEcho", SlowEcho)
    SlowEcho.threads = set()
    job = make_job({"a": "x", "b": "y"}, class_name="SlowEcho")
    results, errors = run_in_threads(committer(), ids_of(job))
    assert errors == {}
    assert {r.status for r in results.values()} == {Status.SUCCEEDED}
    assert "scoring-group-commit" not in SlowEcho.threads
    assert sorted(f.payload["output"]["echo"] for f in Feedback.objects.all()) == ["x", "y"]


def test_committer_failure_wakes_every_thread_with_the_error(make_job, transactional_db, committer):
    """If recording a batch fails, every waiting thread gets the error (its message is retried)."""
    job = make_job({"a": "{}", "b": "{}"})

    def explode(**kwargs):
        raise RuntimeError("scoring blew up")

    results, errors = run_in_threads(committer(evaluate=explode), ids_of(job))
    assert results == {}
    assert {type(e) for e in errors.values()} == {RuntimeError}
    assert len(errors) == 2


def test_a_task_that_cannot_be_written_fails_alone(make_job, transactional_db, committer):
    """A verdict the database refuses (here a scoring call id longer than its column) fails its
    batch; the batch's tasks are then written one by one, so only that task fails."""
    job = make_job({"a": "{}", "b": "{}", "c": "{}"})
    first, poisoned, third = ids_of(job)

    def evaluate(*, task, scorer_and_ref):
        verdict = task_evaluate(task=task, scorer_and_ref=scorer_and_ref)
        if task.id == poisoned:
            verdict.scoring_call["call_id"] = "x" * 500
        return verdict

    looking = committer(evaluate=evaluate, look_ahead=lambda: [poisoned, third])
    assert looking.run(first).status == Status.SUCCEEDED  # its batch failed on the poisoned task
    with pytest.raises(DataError):
        looking.run(poisoned)
    assert looking.run(third).status == Status.SUCCEEDED
    statuses = dict(ScoringTask.objects.values_list("pk", "status"))
    assert statuses == {first: Status.SUCCEEDED, poisoned: Status.PENDING, third: Status.SUCCEEDED}
    assert Feedback.objects.count() == 2


def test_values_beyond_64_bits_are_written_exactly(make_job, transactional_db, committer):
    """A call whose output holds an integer beyond 64 bits is recorded with its scoring call,
    which keeps the exact value among its inputs (the scoring fails: ValidJSON wants text)."""
    big = 123456789012345678901234567890
    job = make_job({"a": {"n": big}})
    assert committer().run(ids_of(job)[0]).status == Status.FAILED
    task = ScoringTask.objects.get()
    assert task.error_type == "TypeError"
    assert Call.objects.get(call_id=task.scoring_call_id).inputs["output"] == {"n": big}


def test_unclaimed_record_is_fenced_on_the_state_read(make_job, db):
    """Verdicts of tasks read without a claim are recorded only for tasks nobody touched since:
    one claimed meanwhile by another worker and one already finished are left alone."""
    job = make_job({"a": "{}", "b": "{}", "c": "{}"})
    read = batch.tasks_read_many(ids_of(job))
    assert {t.attempts for t in read} == {1}  # the attempt each would be
    assert set(ScoringTask.objects.values_list("status", flat=True)) == {Status.PENDING}  # nothing written
    verdicts = [(t, task_evaluate(task=t)) for t in read]
    claimed_meanwhile, finished_meanwhile = read[0].id, read[1].id
    assert batch.tasks_claim_many([claimed_meanwhile])
    ScoringTask.objects.filter(pk=finished_meanwhile).update(status=Status.SUCCEEDED)

    recorded = batch.tasks_record_many(verdicts, claimed=False)

    assert recorded == {read[2].id}
    assert Feedback.objects.count() == 1
    task = ScoringTask.objects.get(pk=read[2].id)
    assert (task.status, task.attempts) == (Status.SUCCEEDED, 1)
    assert ScoringTask.objects.get(pk=claimed_meanwhile).status == Status.RUNNING


def test_committer_records_fetched_tasks_ahead_of_their_messages(make_job, transactional_db, monkeypatch, committer):
    """Tasks of fetched messages are scored and recorded in the batch of the task being run, once;
    when their message comes, it returns at once. A slow scorer's task and a task whose call is
    still running are left untouched for their own message."""
    monkeypatch.setitem(scorers.REGISTRY, "SlowEcho", SlowEcho)
    job = make_job({"a": "{}", "b": "prose", "c": "{}"})
    first, second, third = ids_of(job)
    slow = ids_of(make_job({"s": "x"}, class_name="SlowEcho"))[0]
    unfinished = ids_of(make_job({"running": None}))[0]
    Call.objects.filter(call_id="running").update(ended_at=None)  # the call has not ended yet
    fetched = [second, third, slow, unfinished, 10**9]  # and a task that does not exist
    looking = committer(look_ahead=lambda: fetched)

    assert looking.run(first).status == Status.SUCCEEDED

    statuses = dict(ScoringTask.objects.values_list("pk", "status"))
    assert [statuses[t] for t in (first, second, third)] == [Status.SUCCEEDED] * 3
    assert (statuses[slow], statuses[unfinished]) == (Status.PENDING, Status.PENDING)
    assert Feedback.objects.count() == 3
    # What was left for its own message is not read again by the next batches.
    assert looking._ahead(exclude=set(), room=10) == []
    fetched.clear()  # the messages have started: nothing more to look ahead at
    assert looking.run(second).status == Status.SUCCEEDED  # its result, recorded ahead
    assert looking.run(second) is None  # a redelivery later finds the task finished
    assert task_process(task_id=slow, committer=looking).status == Status.SUCCEEDED
    assert Feedback.objects.count() == 4
    assert set(ScoringTask.objects.filter(pk__in=[first, second, third]).values_list("attempts", flat=True)) == {1}


def test_committer_goes_on_without_look_ahead_when_it_fails(make_job, transactional_db, committer):
    """Looking ahead is an optimisation: if it fails, the batch is written as if it had none."""
    job = make_job({"a": "{}"})

    def broken():
        raise RuntimeError("work queue unreadable")

    assert committer(look_ahead=broken).run(ids_of(job)[0]).status == Status.SUCCEEDED
