"""Fault injection with real processes: a worker SIGKILLed mid-job, Redis emptied and its
connections dropped mid-job, PostgreSQL connections killed mid-job, and the broker unreachable at
submit. Whatever happens, every pair of an accepted job ends final, succeeded pairs have exactly
one feedback, and failures are explained."""

import signal

import pytest
from django.db import connection
from django.utils import timezone

from scoring.models import TASK_UNFINISHED, Call, Feedback, ScoringJob, ScoringTask
from scoring.services.jobs import job_submit
from tests import factories
from tests.conftest import start_worker, stop_worker, wait_for

pytestmark = pytest.mark.slow

Status = ScoringTask.Status
UNFINISHED = TASK_UNFINISHED

# Fast recovery for tests: the same mechanisms as production, on a shorter clock.
FAST_RECOVERY = {
    "SCORING_HEARTBEAT_SECONDS": "0.5",
    "SCORING_TASK_LEASE_SECONDS": "3",
    "SCORING_RECONCILE_SECONDS": "1",
    "SCORING_RECONCILE_GRACE_SECONDS": "1",
    "SCORING_DEAD_WORKER_SECONDS": "3",
}


@pytest.fixture
def workers(transactional_db, broker):
    started = []

    def start(**kwargs):
        process = start_worker(extra_env=FAST_RECOVERY, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        stop_worker(process)


def big_job(user, calls: int, scorers: int = 2) -> ScoringJob:
    """A job of calls x scorers pairs; every tenth call's output is a dict, which ValidJSONScorer
    refuses (a failure that must be explained, not stored as a score)."""
    project = factories.project()
    now = timezone.now()
    Call.objects.bulk_create(
        Call(
            project=project,
            call_id=f"c{i}",
            op_name="op",
            started_at=now,
            ended_at=now,
            output={"x": i} if i % 10 == 0 else f'{{"n": {i}}}',
        )
        for i in range(calls)
    )
    refs = [factories.scorer(object_id=f"json-{k}") for k in range(scorers)]
    ids = [f"c{i}" for i in range(calls)]
    request = {"project_id": "alice/demo", "call_ids": ids, "scorer_refs": refs}
    return job_submit(user=user, project_id="alice/demo", call_ids=ids, scorer_refs=refs, request=request).job


def done_count(job) -> int:
    return ScoringTask.objects.filter(job=job).exclude(status__in=UNFINISHED).count()


def assert_completed_exactly_once(job, calls: int, scorers: int = 2):
    tasks = ScoringTask.objects.filter(job=job)
    assert not tasks.filter(status__in=UNFINISHED).exists()
    assert tasks.count() == calls * scorers
    succeeded = tasks.filter(status=Status.SUCCEEDED)
    failed = tasks.filter(status=Status.FAILED)
    assert succeeded.count() == calls * scorers * 9 // 10
    assert failed.count() == calls * scorers // 10
    assert set(failed.values_list("error_type", flat=True)) == {"TypeError"}
    assert Feedback.objects.filter(task__job=job).count() == succeeded.count()
    assert Feedback.objects.filter(task__job=job, task__status=Status.SUCCEEDED).count() == succeeded.count()
    # One feedback per (call, scorer): no pair was scored twice.
    assert Feedback.objects.filter(project=job.project).values("weave_ref", "runnable_ref").distinct().count() == (
        succeeded.count()
    )


def test_worker_killed_mid_job(user, workers):
    """A worker SIGKILLed mid-job: another worker finishes the job, each pair scored once, including
    those whose messages the dead worker had already fetched."""
    job = big_job(user, calls=1500)
    first = workers(threads=8)
    wait_for(lambda: done_count(job) >= 100, timeout=60, message="the first worker to make progress")
    stop_worker(first, sig=signal.SIGKILL)
    assert ScoringTask.objects.filter(job=job, status__in=UNFINISHED).exists(), "the job ended before the kill"

    workers(threads=8)
    wait_for(
        lambda: not ScoringTask.objects.filter(job=job, status__in=UNFINISHED).exists(),
        timeout=120,
        interval=0.5,
        message="the second worker to finish the job",
    )
    assert_completed_exactly_once(job, calls=1500)


def test_redis_emptied_mid_job(user, workers, broker):
    """Redis restarted empty mid-job (all data flushed, every connection dropped): the reconciler
    enqueues the lost tasks again and the job completes, each pair scored once."""
    job = big_job(user, calls=1500)
    workers(threads=2)
    wait_for(lambda: done_count(job) >= 50, timeout=60, message="the worker to make progress")
    broker.client.flushdb()
    broker.client.client_kill_filter(_type="normal", skipme=True)
    assert ScoringTask.objects.filter(job=job, status__in=UNFINISHED).exists(), "the job ended before the flush"

    wait_for(
        lambda: not ScoringTask.objects.filter(job=job, status__in=UNFINISHED).exists(),
        timeout=120,
        interval=0.5,
        message="the job to complete after the flush",
    )
    assert_completed_exactly_once(job, calls=1500)


def test_database_connections_killed_mid_job(user, workers):
    """PostgreSQL drops every worker connection mid-job (as in a restart): workers reconnect and the
    job completes, each pair scored once."""
    job = big_job(user, calls=1500)
    workers(threads=4)
    wait_for(lambda: done_count(job) >= 50, timeout=60, message="the worker to make progress")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (killed,) = cursor.fetchone()
    assert killed >= 1
    assert ScoringTask.objects.filter(job=job, status__in=UNFINISHED).exists(), "the job ended before the kill"

    wait_for(
        lambda: not ScoringTask.objects.filter(job=job, status__in=UNFINISHED).exists(),
        timeout=120,
        interval=0.5,
        message="the job to complete after the connections died",
    )
    assert_completed_exactly_once(job, calls=1500)


def test_broker_unreachable_at_submit(user, workers, broker, monkeypatch, django_capture_on_commit_callbacks):
    """The broker cannot be reached when the job is committed: the submitter still gets its job
    (the truth: it is recorded), and the reconciler completes it once the broker is back."""
    import redis

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    with monkeypatch.context() as patch:
        patch.setattr(broker, "client", dead)
        patch.setattr(broker, "scripts", {name: dead.register_script(s.script) for name, s in broker.scripts.items()})
        with django_capture_on_commit_callbacks(execute=True):
            job = big_job(user, calls=100)
    assert ScoringTask.objects.filter(job=job, status=Status.PENDING).count() == 200
    assert broker.client.llen(f"{broker.namespace}:scoring") == 0  # nothing reached the broker

    workers(threads=4)
    wait_for(
        lambda: not ScoringTask.objects.filter(job=job, status__in=UNFINISHED).exists(),
        timeout=60,
        interval=0.5,
        message="the reconciler and worker to complete the job",
    )
    assert_completed_exactly_once(job, calls=100)
