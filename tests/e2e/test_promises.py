"""Promises of the README checked through real worker processes: /health, provider keys from the
environment and out of logs, lease renewal, time limits, one reconciler at a time, and recovery on
RabbitMQ."""

import json
import os
import re
import signal
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from scoring.models import TASK_UNFINISHED, Feedback, ScoringTask
from scoring.scorers import blocks
from tests import factories
from tests.conftest import database_url, wait_for
from tests.e2e import hosts, test_rabbitmq
from tests.e2e.test_scorers_e2e import finished, publish_judge, submit
from tests.fakes import FAKE_OPENAI_KEY, FAST_HTTP_ENV, LOOPBACK_ALLOWLIST_ENV
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.remote_scorer import FakeRemoteScorer, hang, result
from tests.fakes.server import Reply

pytestmark = pytest.mark.slow

HEALTH_PORT = 8853
Status = ScoringTask.Status
READY = "Worker process is ready"
rabbitmq = test_rabbitmq.rabbitmq


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("broker_up", [True, False])
def test_health_answers_503_naming_the_broker_when_it_is_down(transactional_db, tmp_path, broker_up):
    """A gunicorn server whose broker answers says 200; one whose broker does not (nothing listens
    at its address) says 503, naming the broker and not the database."""
    broker_url = settings.BROKER_URL if broker_up else "redis://127.0.0.1:1/0"
    env = hosts.service_env(database_url(), broker_url)
    server = hosts.popen(hosts.web_cmd("127.0.0.1", HEALTH_PORT), env, tmp_path / "web.log")
    try:
        hosts.wait_port("127.0.0.1", HEALTH_PORT, what="the web server")
        status, body = get(f"http://127.0.0.1:{HEALTH_PORT}/health")
    finally:
        hosts.kill_group(server)
    assert body["database"] == "ok"
    if broker_up:
        assert (status, body["status"], body["broker"]) == (200, "ok", "ok")
    else:
        assert (status, body["status"]) == (503, "unavailable")
        assert body["broker"] != "ok"


def test_provider_key_comes_from_api_key_env_and_is_not_logged(user, transactional_db, broker, tmp_path):
    """A provider configured with `api_key_env` sends the key found in that variable of the worker
    (here a wrong one, which the provider rejects with a 401 and echoes back); the provider is
    blocked and the pair waits saying why, and the key appears neither in the task's error nor
    anywhere in the worker's output."""
    wrong_key = "sk-from-env-0123456789abcdefghijklmnopqrstu"
    blocks.provider_unblock("openai")  # blocks outlive a test in Redis
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY) as provider:
        factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
        job = submit(user, ["c1"], [publish_judge()])
        providers = {"openai": {"base_url": provider.base_url, "api_key_env": "SCORING_TEST_JUDGE_KEY"}}
        env = hosts.service_env(
            database_url(), settings.BROKER_URL, SCORING_PROVIDERS=json.dumps(providers),
            SCORING_TEST_JUDGE_KEY=wrong_key, **FAST_HTTP_ENV,
        )  # fmt: skip
        log = tmp_path / "worker.log"
        worker = hosts.popen(hosts.worker_cmd(), env, log)
        try:
            task = wait_for(
                lambda: ScoringTask.objects.filter(job=job, error_type="ProviderBlocked").first(),
                timeout=60,
                message="the judge task blocked on its provider",
            )
        finally:
            hosts.kill_group(worker)
            blocks.provider_unblock("openai")

    assert [r.headers["authorization"] for r in provider.requests] == [f"Bearer {wrong_key}"]
    assert (task.status, task.attempts) == (ScoringTask.Status.WAITING, 0)
    assert "401" in task.error_message and wrong_key not in task.error_message
    assert Feedback.objects.count() == 0
    output = log.read_text()
    assert "Worker process is ready" in output  # the log is the worker's
    assert wrong_key not in output


@pytest.fixture
def run_workers(transactional_db, broker, tmp_path):
    """Start worker processes on the test database, each with its own log file; returns (process,
    log) pairs. All are stopped after the test."""
    started = []

    def start(count: int = 1, broker_url: str | None = None, **env: str) -> list:
        pairs = []
        for _ in range(count):
            log = tmp_path / f"worker-{len(started)}.log"
            service_env = hosts.service_env(database_url(), broker_url or settings.BROKER_URL, **env)
            process = hosts.popen(hosts.worker_cmd(threads=2), service_env, log)
            started.append(process)
            pairs.append((process, log))
        return pairs

    yield start
    for process in started:
        hosts.kill_group(process)


def remote_scorer_job(user, endpoint: FakeRemoteScorer):
    factories.call(call_id="c1", output="four", inputs={"question": "2+2?"})
    ref = factories.scorer(class_name="RemoteScorer", object_id="remote", endpoint_url=endpoint.score_url)
    return submit(user, ["c1"], [ref])


def test_a_scoring_that_outlasts_its_lease_keeps_its_task(user, run_workers):
    """A remote scorer answering after four leases (2 s each, renewed every 0.5 s) keeps its task:
    the reconciler and the other worker see a live lease, so the pair is attempted once, asked
    once, and scored once."""
    with FakeRemoteScorer() as endpoint:
        endpoint.script(result({"value": 1.0}, latency=8))
        run_workers(2, SCORING_TASK_LEASE_SECONDS="2", SCORING_REMOTE_SCORER_TIMEOUT="30", **LOOPBACK_ALLOWLIST_ENV)
        job = remote_scorer_job(user, endpoint)
        wait_for(finished(job), timeout=90, message="the slow remote scorer task")
        scored = len(endpoint.scored)

    task = ScoringTask.objects.get(job=job)
    assert (task.status, task.attempts) == (Status.SUCCEEDED, 1), task.error_message
    assert scored == 1
    assert Feedback.objects.get().payload == {"output": {"value": 1.0}}


def test_a_scoring_interrupted_by_its_time_limit_waits_then_fails(user, run_workers):
    """A remote scorer whose answer trickles in a byte at a time never trips the read timeout, so
    Dramatiq's time limit (2 s for RemoteScorer) interrupts the worker thread: the task waits for
    its next attempt, and after the last one fails as TimeLimitExceeded, with no feedback."""
    slow_answer = Reply(200, json={"schema_version": 1, "result": {"reason": "x" * 400}}, trickle=0.1)
    with FakeRemoteScorer() as endpoint:
        endpoint.script(slow_answer, slow_answer)
        run_workers(
            SCORING_TIME_LIMITS=json.dumps({"RemoteScorer": 2}), SCORING_MAX_ATTEMPTS="2",
            **FAST_HTTP_ENV, **LOOPBACK_ALLOWLIST_ENV,
        )  # fmt: skip
        job = remote_scorer_job(user, endpoint)
        wait_for(finished(job), timeout=90, message="the interrupted remote scorer task")
        scored = len(endpoint.scored)

    task = ScoringTask.objects.get(job=job)
    assert (task.status, task.error_type, task.attempts) == (Status.FAILED, "TimeLimitExceeded", 2)
    assert task.error_message.startswith("Gave up after 2 attempts: The scoring took longer than its time limit")
    assert scored == 2
    assert Feedback.objects.count() == 0


@pytest.fixture
def reconcile_lock(broker):
    """The fleet's reconcile lock in the broker's Redis, free before and after the test."""
    broker.client.delete("scoring:reconcile-lock")
    yield
    broker.client.delete("scoring:reconcile-lock")


def test_one_worker_process_reconciles_per_interval(run_workers, reconcile_lock):
    """Two worker processes sharing a broker each try to reconcile soon after boot; within the
    60 s interval only the one that took the lock does, and the other skips."""
    logs = [log for _, log in run_workers(2, SCORING_RECONCILE_SECONDS="60", LOG_LEVEL="DEBUG")]

    def attempts() -> dict[str, list[str]]:
        found = {}
        for log in logs:
            text = log.read_text() if log.exists() else ""
            found[log.name] = re.findall(r"Reconciling: this worker|Another worker process reconciles", text)
        return found

    wait_for(lambda: all(attempts().values()), timeout=90, message="both workers to try to reconcile")
    tried = sorted(attempts().values())
    assert tried == [["Another worker process reconciles"], ["Reconciling: this worker"]]


def test_rabbitmq_task_abandoned_by_a_killed_worker_is_sent_again_and_scored_once(user, run_workers, rabbitmq):
    """On RabbitMQ, a worker killed mid-scoring leaves its task running; the redelivered message
    finds its lease still live and is dropped, so once the lease expires the other worker's
    reconciler sends the task again: it is scored once, on its second attempt."""
    env = {"SCORING_REMOTE_SCORER_TIMEOUT": "60", **LOOPBACK_ALLOWLIST_ENV}
    with FakeRemoteScorer() as endpoint:
        endpoint.script(hang())
        factories.call(call_id="c1", output="four")
        ref = factories.scorer(class_name="RemoteScorer", object_id="remote", endpoint_url=endpoint.score_url)
        ((first, _),) = run_workers(broker_url=rabbitmq, **env)
        submitted = hosts.manage(
            "score", "--project", "alice/demo", "--calls", "c1", "--scorers", ref,
            env=hosts.service_env(database_url(), rabbitmq, **env),
        )  # fmt: skip
        job_id = re.search(r"Job ([0-9a-f-]+):", submitted.stdout).group(1)
        wait_for(lambda: endpoint.scored, timeout=60, message="the first worker to ask the remote scorer")
        ((_, second_log),) = run_workers(broker_url=rabbitmq, **env)
        wait_for(lambda: READY in second_log.read_text(), timeout=60, message="the second worker to start")
        os.killpg(first.pid, signal.SIGKILL)
        wait_for(finished_job(job_id), timeout=60, message="the abandoned task to be scored")
        scored = len(endpoint.scored)

    task = ScoringTask.objects.get(job_id=job_id)
    assert (task.status, task.attempts) == (Status.SUCCEEDED, 2), task.error_message
    assert scored == 2
    assert Feedback.objects.filter(task=task).count() == 1
    assert "Reconciler enqueued 1 task(s) again" in second_log.read_text()  # it was the reconciler


def finished_job(job_id: str):
    return lambda: not ScoringTask.objects.filter(job_id=job_id, status__in=TASK_UNFINISHED).exists()
