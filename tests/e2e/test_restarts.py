"""Real restarts mid-job of the test's own servers: PostgreSQL (pg_ctl restart), Redis (restarted
empty) and RabbitMQ. Each time every pair of the job ends final, exactly once."""

import logging
import time

import pytest

from tests.e2e import hosts
from tests.e2e.hosts import Api, Ledger, wait_until
from tests.fakes.remote_scorer import FakeRemoteScorer, result

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

LOOPBACK = ["127.0.0.1"]
PG_PORT, REDIS_PORT, AMQP_PORT, AMQP_DIST_PORT, WEB_PORT = 15852, 16852, 25853, 25854, 8852
CALLS = 200
DEADLINE = 120  # generous: the point is that the job ends, not how fast


@pytest.fixture(scope="module")
def postgres():
    server = hosts.PrivatePostgres(LOOPBACK, PG_PORT).start()
    yield server
    server.stop()


@pytest.fixture
def redis_server():
    server = hosts.PrivateRedis(LOOPBACK, REDIS_PORT).start()
    yield server
    server.stop()


@pytest.fixture
def rabbitmq_server():
    server = hosts.PrivateRabbitMQ(LOOPBACK, AMQP_PORT, AMQP_DIST_PORT).start()
    yield server
    server.stop()


class SlowScorer(FakeRemoteScorer):
    """A remote scorer that takes a moment per pair, so that the job is still running when a
    server restarts."""

    def default(self, request):
        return result({"ok": True}, latency=0.02)


@pytest.fixture
def slow_scorer():
    with SlowScorer() as server:
        yield server


@pytest.fixture
def service(postgres, slow_scorer, tmp_path, request):
    """start(broker_url) -> (api, ledger): a migrated private database, a web server and a worker."""
    started = []

    def start(broker_url: str):
        database_url = postgres.migrated_database(f"restart_{request.node.name[5:40]}")
        env = hosts.service_env(database_url, broker_url, SCORING_OUTBOUND_ALLOWLIST="127.0.0.1")
        key = hosts.manage("createapikey", "alice", "--create-user", env=env).stdout.strip()
        web = hosts.popen(hosts.web_cmd("127.0.0.1", WEB_PORT), env, tmp_path / "web.log")
        started.append(web)
        hosts.wait_port("127.0.0.1", WEB_PORT, what="the web server")
        started.append(hosts.popen(hosts.worker_cmd(threads=4), env, tmp_path / "worker.log"))
        ledger = Ledger(database_url)
        started.append(ledger)
        return Api(f"http://127.0.0.1:{WEB_PORT}", key), ledger

    yield start
    for item in reversed(started):
        item.close() if isinstance(item, Ledger) else hosts.kill_group(item)


def submit(api: Api, scorer_url: str) -> str:
    """A job of CALLS calls x (a built-in scorer, the slow remote scorer)."""
    project = "alice/restarts"
    api.log_calls(project, {f"c{i}": f'{{"n": {i}}}' for i in range(CALLS)})
    refs = [
        api.publish_scorer(project, "json", "ValidJSONScorer"),
        api.publish_scorer(project, "remote", "RemoteScorer", endpoint_url=scorer_url),
    ]
    return api.score(project, [f"c{i}" for i in range(CALLS)], refs)


def restart_mid_job(api: Api, ledger: Ledger, scorer_url: str, restart, what: str) -> None:
    job = submit(api, scorer_url)
    wait_until(lambda: ledger.statuses(job).get("succeeded", 0) >= 50, timeout=60, message="the worker to start")
    assert ledger.unfinished(job), "the job ended before the restart"
    restarted_at = time.monotonic()
    restart()
    wait_until(
        lambda: ledger.finished(job, 2 * CALLS),
        timeout=DEADLINE,
        interval=0.5,
        message=f"the job to end after {what} restarted",
        state=lambda: ledger.statuses(job),
    )
    logger.warning("%s restarted mid-job: job final %.1fs after the restart", what, time.monotonic() - restarted_at)
    assert ledger.statuses(job) == {"succeeded": 2 * CALLS}, ledger.errors(job)
    feedback = ledger.feedback(job)
    assert len(feedback) == 2 * CALLS
    assert len({(weave_ref, runnable_ref) for weave_ref, runnable_ref, _ in feedback}) == 2 * CALLS


def test_postgres_restarted_mid_job(service, redis_server, postgres, slow_scorer):
    """PostgreSQL restarted mid-job (every connection closed, the server down a moment): the
    worker reconnects and every pair ends succeeded with exactly one feedback."""
    api, ledger = service(redis_server.url())
    restart_mid_job(api, ledger, slow_scorer.score_url, postgres.restart, "PostgreSQL")


def test_redis_restarted_empty_mid_job(service, redis_server, slow_scorer):
    """Redis restarted empty mid-job (every message and heartbeat lost): the reconciler enqueues the
    lost tasks again and every pair ends succeeded with exactly one feedback."""
    api, ledger = service(redis_server.url())
    restart_mid_job(api, ledger, slow_scorer.score_url, redis_server.restart_empty, "Redis")


def test_rabbitmq_restarted_mid_job(service, rabbitmq_server, slow_scorer):
    """RabbitMQ restarted mid-job: the worker reconnects, the durable messages are delivered again,
    and every pair ends succeeded with exactly one feedback."""
    api, ledger = service(rabbitmq_server.url())
    restart_mid_job(api, ledger, slow_scorer.score_url, rabbitmq_server.restart, "RabbitMQ")
