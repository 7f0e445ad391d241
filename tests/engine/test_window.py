"""The dispatch window (real PostgreSQL and Redis): a job has at most its window of messages in
the broker, the rest wait pending; refills follow finished tasks; projects are interleaved by
weight and capped; the reconciler leaves what the window holds back alone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from scoring.engine.reconcile import broker_view, reconcile
from scoring.engine.run import task_run
from scoring.engine.window import interleave, windows_refill
from scoring.models import ScoringJob, ScoringTask
from scoring.services.jobs import job_submit
from tests import factories

Status = ScoringTask.Status


@pytest.fixture
def make_job(user, broker):
    def make(project_id="alice/demo", pairs=10):
        ids = [factories.call(project_id, f"{project_id}-c{i}").call_id for i in range(pairs)]
        ref = factories.scorer(project_id)
        request = {"project_id": project_id, "call_ids": ids, "scorer_refs": [ref]}
        return job_submit(user=user, project_id=project_id, call_ids=ids, scorer_refs=[ref], request=request).job

    return make


def statuses(job) -> dict:
    counts = {}
    for status in job.tasks.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_a_job_gets_only_its_window_of_messages(make_job, broker, settings):
    """A submitted job's tasks wait pending; a refill gives the window's worth of them, the first
    ones, a message each, and the rest stay pending with no message."""
    settings.SCORING_DISPATCH_WINDOW = 3
    job = make_job(pairs=10)
    assert statuses(job) == {Status.PENDING: 10}
    assert windows_refill() == 3
    first_three = set(job.tasks.order_by("pk").values_list("pk", flat=True)[:3])
    assert set(job.tasks.filter(status=Status.QUEUED).values_list("pk", flat=True)) == first_three
    assert broker_view(broker).task_ids == first_three
    assert windows_refill() == 0  # a full window is left as it is


def test_finished_tasks_make_room_in_the_window(make_job, broker, settings):
    """Once half the window has finished, a refill tops it up again, in id order, until no task
    is pending; then the job stops being looked at."""
    settings.SCORING_DISPATCH_WINDOW = 4
    job = make_job(pairs=6)
    windows_refill()
    queued = list(job.tasks.filter(status=Status.QUEUED).order_by("pk").values_list("pk", flat=True))
    task_run(task_id=queued[0])
    assert windows_refill() == 0  # one free slot of four: not worth a refill yet
    task_run(task_id=queued[1])
    assert windows_refill() == 2
    assert statuses(job) == {Status.SUCCEEDED: 2, Status.QUEUED: 4}
    for task_id in queued[2:]:
        task_run(task_id=task_id)
    assert windows_refill() == 0  # nothing is pending any more
    job.refresh_from_db()
    assert not job.dispatch_pending


def test_project_weights_interleave_and_caps_bound_the_broker(make_job, broker, settings):
    """A refill of two projects sends their messages in weighted round robin, and a project's
    concurrency cap bounds how many of its tasks hold messages."""
    settings.SCORING_DISPATCH_WINDOW = 4
    settings.SCORING_PROJECT_WEIGHTS = {"alice/heavy": 2}
    settings.SCORING_PROJECT_CONCURRENCY = {"alice/capped": 2}
    heavy, light, capped = make_job("alice/heavy", 10), make_job("alice/light", 10), make_job("alice/capped", 10)
    windows_refill()
    assert statuses(heavy)[Status.QUEUED] == 8  # the window times its weight
    assert statuses(light)[Status.QUEUED] == 4
    assert statuses(capped)[Status.QUEUED] == 2
    assert interleave({"a": [1, 2, 3, 4, 5, 6], "b": [7, 8]}, {"a": 2, "b": 1}) == [1, 2, 7, 3, 4, 8, 5, 6]


def test_reconciler_never_enqueues_what_the_window_holds_back(make_job, broker, settings):
    """Long after dispatch, the reconciler re-sends a windowed task whose message the broker lost,
    but never a pending one: the job's messages stay within its window."""
    settings.SCORING_DISPATCH_WINDOW = 3
    job = make_job(pairs=10)
    windows_refill()
    a_while_ago = timezone.now() - timedelta(minutes=5)
    ScoringJob.objects.filter(pk=job.pk).update(created_at=a_while_ago)
    job.tasks.filter(status=Status.QUEUED).update(dispatched_at=a_while_ago)
    assert reconcile() == 0
    broker.flush_all()  # the broker forgets the window's messages
    assert reconcile() == 3
    assert len(broker_view(broker).task_ids) == 3
    assert statuses(job) == {Status.QUEUED: 3, Status.PENDING: 7}


def test_retry_lets_failed_tasks_through_the_window_again(make_job, broker, settings, user):
    """Failed tasks retried go back to pending, and the job's window gives them messages again
    although they come before its cursor."""
    from scoring.services.jobs import job_retry_failed

    settings.SCORING_DISPATCH_WINDOW = 10
    job = make_job(pairs=3)
    windows_refill()
    job.tasks.update(status=Status.FAILED, finished_at=timezone.now())
    ScoringJob.objects.filter(pk=job.pk).update(finished_at=timezone.now())
    assert job_retry_failed(user=user, job_id=job.pk) == 3
    assert statuses(job) == {Status.PENDING: 3}
    assert windows_refill() == 3
