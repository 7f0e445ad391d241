"""Metrics and logs end to end: gunicorn (two workers) and `rundramatiq` (two processes) share a
PROMETHEUS_MULTIPROC_DIR; /metrics is scraped over HTTP and compared with the database and the
broker; a worker's JSON log lines carry the job and task they were emitted for."""

import json
import os
import socket
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from scoring.engine.dispatch import tasks_send
from scoring.models import TASK_UNFINISHED, ScoringJob, ScoringTask
from tests import factories
from tests.conftest import ROOT, database_url, start_worker, stop_worker, wait_for
from tests.e2e.test_scorers_e2e import RETRY_FAST, publish_judge, submit
from tests.fakes import FAST_HTTP_ENV
from tests.fakes.openai_server import answer, rate_limited

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.fakes.fixtures"]

Status = ScoringTask.Status
TOKEN = "metrics-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(metrics_dir, **extra) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings_test",
        "DATABASE_URL": database_url(),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@pytest.fixture
def metrics_dir(tmp_path):
    path = tmp_path / "prometheus"
    path.mkdir()
    return path


@pytest.fixture
def web(metrics_dir, transactional_db, broker):
    """gunicorn with two workers serving the project; yields its base URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "project.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=_env(metrics_dir, SCORING_METRICS_TOKEN=TOKEN),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(url + "/server_info").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=60, message="gunicorn to answer")
    yield url
    stop_worker(process)


@pytest.fixture
def run_worker(metrics_dir, transactional_db, broker):
    """Start `rundramatiq` processes that write their metrics where the web server reads them."""
    started = []

    def start(processes=2, **env):
        extra = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **FAST_HTTP_ENV, **RETRY_FAST, **env}
        started.append(start_worker(processes=processes, threads=4, extra_env=extra))

    yield start
    for process in started:
        stop_worker(process)


def scrape(url: str) -> dict:
    """Every sample of a scrape, keyed by (name, sorted label pairs)."""
    response = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def db_counts() -> dict:
    return {status: ScoringTask.objects.filter(status=status).count() for status in Status.values}


def job_stamped(job):
    return lambda: ScoringJob.objects.filter(pk=job.pk, finished_at__isnull=False).exists()


def test_scrape_before_any_worker_shows_the_pending_tasks_and_the_dispatch_message(user, web, broker):
    """Tasks by state come from the database and the queue depth from Redis at scrape time: a job
    submitted while no worker runs is three pending tasks (not yet in the dispatch window) and one
    dispatch message ready."""
    for i in range(3):
        factories.call(call_id=f"c{i}")
    submit(user, ["c0", "c1", "c2"], [factories.scorer()])

    samples = scrape(web)

    assert value(samples, "scoring_tasks", state="pending") == db_counts()[Status.PENDING] == 3
    assert value(samples, "scoring_tasks", state="queued") == 0
    assert value(samples, "scoring_tasks", state="running") == 0
    assert value(samples, "scoring_unfinished_jobs") == 1
    ready = broker.client.llen(f"{broker.namespace}:scoring")
    assert value(samples, "scoring_queue_messages", queue="scoring", state="ready") == ready == 1
    assert value(samples, "scoring_broker_up") == 1


def test_scrape_after_a_real_worker_scores_a_job_matches_the_database(user, web, run_worker):
    """Results counted by two worker processes, summed by the web server's scrape, equal the
    tasks' states in the database; the latency histogram counts every scoring of its class."""
    for i in range(6):
        factories.call(call_id=f"ok{i}", output='{"answer": 4}')
    for i in range(4):
        factories.call(call_id=f"bad{i}", output={"not": "a string"})  # json.loads refuses a dict
    calls = [f"ok{i}" for i in range(6)] + [f"bad{i}" for i in range(4)]
    job = submit(user, calls, [factories.scorer()])
    run_worker(processes=2)
    wait_for(job_stamped(job), timeout=90, message="the job to finish")

    samples = scrape(web)
    counts = db_counts()

    assert (counts[Status.SUCCEEDED], counts[Status.FAILED]) == (6, 4)
    results = "scoring_task_results_total"
    assert value(samples, results, scorer_class="ValidJSONScorer", status="succeeded") == counts[Status.SUCCEEDED]
    assert value(samples, results, scorer_class="ValidJSONScorer", status="failed") == counts[Status.FAILED]
    for state in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED):
        assert value(samples, "scoring_finished_tasks", state=state) == counts[state]
    for state in TASK_UNFINISHED:
        assert value(samples, "scoring_tasks", state=state) == counts[state] == 0
    assert value(samples, "scoring_scorer_duration_seconds_count", scorer_class="ValidJSONScorer") == 10
    assert value(samples, "scoring_scorer_duration_seconds_bucket", scorer_class="ValidJSONScorer", le="+Inf") == 10
    assert value(samples, "scoring_unfinished_jobs") == 0
    assert value(samples, "scoring_lease_takeovers_total") == 0


def test_taking_over_a_task_whose_lease_expired_is_counted(user, web, run_worker):
    """A running task whose lease expired (its worker died) is claimed again and scored once; the
    claim counts as one lease takeover."""
    factories.call(call_id="c1")
    job = submit(user, ["c1"], [factories.scorer()])
    expired = timezone.now() - timedelta(minutes=5)
    ScoringTask.objects.filter(job=job).update(status=Status.RUNNING, attempts=1, lease_expires_at=expired)
    tasks_send(tasks=ScoringTask.objects.filter(job=job))
    run_worker(processes=1)
    wait_for(job_stamped(job), timeout=60, message="the abandoned task to be taken over")

    task = ScoringTask.objects.get(job=job)
    assert (task.status, task.attempts) == (Status.SUCCEEDED, 2)
    assert value(scrape(web), "scoring_lease_takeovers_total") == 1


def test_reconciler_requeues_and_stamps_are_counted(user, web, run_worker, broker):
    """The broker forgot a job's messages and another job's last worker stopped before stamping
    it: the worker's reconciler enqueues the two tasks again and stamps the job, and says so."""
    factories.call(call_id="c1")
    factories.call(call_id="c2")
    lost = submit(user, ["c1", "c2"], [factories.scorer()])
    unstamped = submit(user, ["c1"], [factories.scorer(class_name="StringMatchScorer", object_id="match")])
    ScoringTask.objects.filter(job=unstamped).update(status=Status.SUCCEEDED, finished_at=timezone.now())
    # The lost job's window was sent (its tasks queued, with their messages), then Redis restarted
    # empty: no message of either job is left.
    ScoringTask.objects.filter(job=lost).update(status=Status.QUEUED, dispatched_at=timezone.now())
    ScoringJob.objects.filter(pk=lost.pk).update(dispatch_pending=False)
    broker.flush_all()
    run_worker(processes=1, SCORING_RECONCILE_GRACE_SECONDS="0", SCORING_HEARTBEAT_SECONDS="0.2")
    wait_for(job_stamped(lost), timeout=60, message="the lost job to be enqueued again and scored")
    wait_for(job_stamped(unstamped), timeout=30, message="the unstamped job to be stamped")

    samples = scrape(web)
    assert value(samples, "scoring_reconciler_requeued_tasks_total") == 2
    assert value(samples, "scoring_reconciler_stamped_jobs_total") == 1
    assert value(samples, "scoring_reconciler_runs_total") >= 1


def test_provider_requests_errors_and_retries_are_counted(user, web, fake_openai, run_worker):
    """A judge whose provider answers 429 then 200: one request of each status, one rate-limit
    error, one retry, and one succeeded result with its latency, all from the worker."""
    factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
    fake_openai.script(rate_limited(retry_after="0.1"), answer('{"correct": true}'))
    job = submit(user, ["c1"], [publish_judge()])
    run_worker(processes=1, **fake_openai.provider_env("openai"))
    wait_for(job_stamped(job), timeout=60, message="the judge task")

    samples = scrape(web)
    assert value(samples, "scoring_provider_requests_total", provider="openai", status="429") == 1
    assert value(samples, "scoring_provider_requests_total", provider="openai", status="200") == 1
    assert value(samples, "scoring_provider_errors_total", provider="openai", error_type="ProviderRateLimited") == 1
    assert value(samples, "scoring_task_retries_total", error_type="ProviderRateLimited") == 1
    results = "scoring_task_results_total"
    assert value(samples, results, scorer_class="LLMAsAJudgeScorer", status="succeeded") == 1
    assert value(samples, "scoring_scorer_duration_seconds_count", scorer_class="LLMAsAJudgeScorer") == 1


def test_worker_json_logs_carry_the_job_and_task_being_scored(user, fake_openai, transactional_db, broker, tmp_path):
    """With LOG_FORMAT=json the worker logs JSON objects (time, level, logger, message), and the
    provider's warning emitted while the task was being scored names its job_id and task_id."""
    factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
    fake_openai.script(rate_limited(retry_after="0.1"), answer('{"correct": true}'))
    job = submit(user, ["c1"], [publish_judge()])
    task = ScoringTask.objects.get(job=job)
    log_path = tmp_path / "worker.log"
    env = {**FAST_HTTP_ENV, **RETRY_FAST, **fake_openai.provider_env("openai"), "LOG_FORMAT": "json"}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "2"],
            cwd=ROOT,
            env={**_env(tmp_path), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(job_stamped(job), timeout=60, message="the judge task")
        finally:
            stop_worker(process)

    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    warnings = [r for r in records if r["logger"] == "scoring.scorers.providers"]
    assert len(warnings) == 1, records
    assert "ProviderRateLimited" in warnings[0]["message"]
    assert (warnings[0]["job_id"], warnings[0]["task_id"]) == (str(job.pk), task.pk)
    assert warnings[0]["level"] == "WARNING"
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)


def test_a_worker_host_serves_the_metrics_of_its_processes_on_its_own_port(user, run_worker):
    """With SCORING_METRICS_PORT one of a host's worker processes serves /metrics (token
    required): the results of both processes, and none of the web server's database reads."""
    for i in range(4):
        factories.call(call_id=f"c{i}")
    job = submit(user, [f"c{i}" for i in range(4)], [factories.scorer()])
    port = _free_port()
    run_worker(
        processes=2, SCORING_METRICS_PORT=str(port), SCORING_METRICS_TOKEN=TOKEN, SCORING_METRICS_HOST="127.0.0.1"
    )
    wait_for(job_stamped(job), timeout=60, message="the job to finish")
    url = f"http://127.0.0.1:{port}"

    def served():
        try:
            return httpx.get(url + "/metrics").status_code == 401
        except httpx.HTTPError:
            return False

    wait_for(served, timeout=30, message="a worker process to serve the host's metrics")
    samples = scrape(url)
    results = "scoring_task_results_total"
    assert value(samples, results, scorer_class="ValidJSONScorer", status="succeeded") == 4
    assert not any(name == "scoring_tasks" for name, _ in samples)
