"""The reconciler: what the broker holds is compared with the unfinished tasks, and every task
nothing will run is enqueued again (real Redis)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from scoring.engine.actors import dispatch_job, score_task
from scoring.engine.reconcile import broker_view, reconcile
from scoring.models import ScoringJob, ScoringTask
from scoring.services.jobs import job_submit
from tests import factories

Status = ScoringTask.Status


@pytest.fixture
def job(user, broker):
    for i in range(3):
        factories.call(call_id=f"c{i}")
    ref = factories.scorer()
    ids = ["c0", "c1", "c2"]
    request = {"project_id": "alice/demo", "call_ids": ids, "scorer_refs": [ref]}
    job = job_submit(user=user, project_id="alice/demo", call_ids=ids, scorer_refs=[ref], request=request).job
    # As if committed a while ago and given its messages by its dispatch window then, so the grace
    # period for fresh messages does not apply.
    a_while_ago = timezone.now() - timedelta(minutes=5)
    ScoringJob.objects.filter(pk=job.pk).update(created_at=a_while_ago, dispatch_pending=False)
    job.tasks.update(status=Status.QUEUED, dispatched_at=a_while_ago)
    return job


def task_ids(job) -> list[int]:
    return sorted(job.tasks.values_list("pk", flat=True))


def test_broker_view_sees_queued_and_delayed_messages(job, broker):
    """Messages waiting in the queue and in the delay queue both count as held by the broker."""
    first, second, _ = task_ids(job)
    score_task.send(first)
    score_task.send_with_options(args=(second,), delay=60_000)
    dispatch_job.send(str(job.pk))
    view = broker_view(broker)
    assert view.complete
    assert view.task_ids == {first, second}
    assert view.job_ids == {str(job.pk)}


def test_queued_tasks_the_broker_forgot_are_enqueued_again(job, broker):
    """After the broker lost its messages (restart, flush), every queued task is enqueued again."""
    assert reconcile() == 3
    assert broker_view(broker).task_ids == set(task_ids(job))


def test_tasks_with_messages_are_left_alone(job, broker):
    """A queued task whose message the broker still holds is not enqueued twice."""
    for task_id in task_ids(job):
        score_task.send(task_id)
    assert reconcile() == 0


def test_job_awaiting_fan_out_is_left_alone(job, broker):
    """Tasks of a job whose dispatch message is still pending are left to that message."""
    dispatch_job.send(str(job.pk))
    assert reconcile() == 0


def test_fresh_jobs_get_a_grace_period(job, broker):
    """Tasks given their messages a moment ago may still be on their way; they are not touched."""
    job.tasks.update(dispatched_at=timezone.now())
    assert reconcile() == 0


def test_tasks_never_dispatched_of_a_fresh_job_get_a_grace_period(job, broker):
    """Queued tasks recorded without the window (no dispatch time) of a job committed a moment
    ago are not touched either."""
    ScoringJob.objects.filter(pk=job.pk).update(created_at=timezone.now())
    job.tasks.update(dispatched_at=None)
    assert reconcile() == 0


def test_abandoned_running_task_is_enqueued_again_even_with_a_message(job, broker):
    """A running task whose lease expired (its worker died) is re-sent, even though the dead
    worker's unacknowledged message is still in the broker."""
    first, *rest = task_ids(job)
    for task_id in task_ids(job):
        score_task.send(task_id)
    ScoringTask.objects.filter(pk=first).update(
        status=Status.RUNNING, attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert reconcile() == 1


def test_running_task_with_a_live_lease_is_left_alone(job, broker):
    """A running task whose worker keeps renewing its lease is not touched."""
    ScoringTask.objects.filter(job=job).update(
        status=Status.RUNNING, attempts=1, lease_expires_at=timezone.now() + timedelta(seconds=30)
    )
    assert reconcile() == 0


def test_overdue_waiting_task_without_message_is_enqueued_again(job, broker):
    """A waiting task whose retry is overdue and whose delayed message was lost is re-sent; one
    whose retry is still ahead is left alone."""
    first, second, third = task_ids(job)
    for task_id in (first, second, third):
        score_task.send(task_id)
    ScoringTask.objects.filter(pk=first).update(status=Status.WAITING, retry_at=timezone.now() - timedelta(minutes=1))
    ScoringTask.objects.filter(pk=second).update(status=Status.WAITING, retry_at=timezone.now() + timedelta(minutes=1))
    broker.flush_all()
    ScoringTask.objects.filter(pk=third).update(status=Status.SUCCEEDED)
    assert reconcile() == 1
    assert broker_view(broker).task_ids == {first}


def test_finished_and_cancelled_tasks_are_never_enqueued(job, broker):
    """Succeeded, failed and cancelled tasks stay as they are."""
    first, second, third = task_ids(job)
    ScoringTask.objects.filter(pk=first).update(status=Status.SUCCEEDED)
    ScoringTask.objects.filter(pk=second).update(status=Status.FAILED)
    ScoringTask.objects.filter(pk=third).update(status=Status.CANCELLED)
    assert reconcile() == 0


def test_reconcile_command(job, broker, capsys):
    """`manage.py scoring_reconcile` enqueues what the broker lost and says how many."""
    from django.core.management import call_command

    call_command("scoring_reconcile")
    assert "Enqueued 3 task(s) again." in capsys.readouterr().out
    assert broker_view(broker).task_ids == set(task_ids(job))


def test_messages_of_a_dead_worker_go_back_to_the_queue(job, broker, settings):
    """Messages fetched by a worker that stopped beating are requeued by the reconciler, without
    waiting for Dramatiq's random maintenance; a live worker's messages stay where they are."""
    import time

    settings.SCORING_DEAD_WORKER_SECONDS = 5
    first, second, _ = task_ids(job)
    for task_id in (first, second):
        score_task.send(task_id)
    client, ns = broker.client, broker.namespace
    # Two consumers fetch one message each: "dead" beat long ago, "alive" just now.
    now_ms = int(time.time() * 1000)
    for worker_id, beat in (("dead-worker", now_ms - 60_000), ("live-worker", now_ms)):
        args = ["fetch", now_ms, "scoring", worker_id, 60_000, broker.dead_message_ttl, 0, 1000, 1]
        broker.scripts["dispatch"](keys=[ns], args=args)
        client.zadd(f"{ns}:__heartbeats__", {worker_id: beat})
    assert client.llen(f"{ns}:scoring") == 0

    from scoring.engine.reconcile import requeue_dead_workers

    requeue_dead_workers(broker)
    assert client.llen(f"{ns}:scoring") == 1
    assert client.scard(f"{ns}:__acks__.live-worker.scoring") == 1
    assert client.scard(f"{ns}:__acks__.dead-worker.scoring") == 0


def test_a_finished_job_left_unstamped_is_stamped(job, user, broker):
    """A worker that stopped between a job's last result and the job's stamp leaves it unstamped;
    the reconciler stamps it with its final status and counts, and leaves running jobs alone."""
    ref = factories.scorer()
    request = {"project_id": "alice/demo", "call_ids": ["c0"], "scorer_refs": [ref]}
    running = job_submit(user=user, project_id="alice/demo", call_ids=["c0"], scorer_refs=[ref], request=request).job
    job.tasks.update(status=Status.SUCCEEDED, finished_at=timezone.now())

    reconcile()

    job.refresh_from_db()
    running.refresh_from_db()
    assert job.finished_at is not None
    assert (job.final_status, job.final_counts["succeeded"]) == ("succeeded", 3)
    assert (running.finished_at, running.final_status) == (None, "")
