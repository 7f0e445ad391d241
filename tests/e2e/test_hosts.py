"""Several hosts: the web server and two worker hosts in network namespaces of their own, reaching a
private PostgreSQL and broker over the network; one worker host is cut off mid-job and healed."""

import logging
import threading
import time

import pytest

from tests.e2e import hosts
from tests.e2e.hosts import LEASE_SECONDS, Api, Ledger, wait_until
from tests.fakes.remote_scorer import FakeRemoteScorer, result

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

CALLS = 24
CUT_SECONDS = LEASE_SECONDS + 4  # longer than the lease: the cut host's tasks must be taken over


class HostAwareScorer(FakeRemoteScorer):
    """A remote scorer whose result names the host that asked and the request's number. The cut
    host's requests are answered only once it is cut off, so everything it holds at the cut is
    still unwritten, and its answers arrive when it comes back."""

    def __init__(self, host: str, held_host: str):
        super().__init__(host=host)
        self.held_host = held_host
        self.cut = threading.Event()

    def default(self, request):
        if request.client == self.held_host:
            self.cut.wait(60)
        number = self.requests.index(request)
        call_id = (request.json or {}).get("original_call", {}).get("id")
        return result({"host": request.client, "request": number, "call": call_id}, latency=0.2)


@pytest.fixture(scope="module")
def network():
    hosts.Network.check()
    network = hosts.Network().create()
    yield network
    network.destroy()


@pytest.fixture(scope="module")
def postgres(network):
    server = hosts.PrivatePostgres([network.gateway]).start()
    yield server
    server.stop()


@pytest.fixture
def redis_broker(network):
    server = hosts.PrivateRedis([network.gateway]).start()
    yield server.url()
    server.stop()


@pytest.fixture
def rabbitmq_broker(network):
    server = hosts.PrivateRabbitMQ([network.gateway]).start()
    yield server.url()
    server.stop()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request):
    return request.getfixturevalue(f"{request.param}_broker")


@pytest.fixture
def cluster(network, postgres, broker_url, tmp_path, request):
    """A migrated database, a web host and two worker hosts (a, b) on the private servers."""
    database_url = postgres.migrated_database(f"hosts_{request.node.callspec.id}")
    env = hosts.service_env(
        database_url, broker_url, SCORING_OUTBOUND_ALLOWLIST=network.gateway, SCORING_REMOTE_SCORER_TIMEOUT="60"
    )
    key = hosts.manage("createapikey", "alice", "--create-user", env=env).stdout.strip()
    web, a, b = network.host("web"), network.host("a"), network.host("b")
    processes = {"web": web.popen(hosts.web_cmd(web.address), env, tmp_path / "web.log")}
    hosts.wait_port(web.address, hosts.WEB_PORT, what="the web host")
    processes["a"] = a.popen(hosts.worker_cmd(threads=4), env, tmp_path / "a.log")
    processes["b"] = b.popen(hosts.worker_cmd(threads=4), env, tmp_path / "b.log")
    ledger = Ledger(database_url)
    yield {
        "api": Api(f"http://{web.address}:{hosts.WEB_PORT}", key),
        "ledger": ledger,
        "a": a,
        "b": b,
        "processes": processes,
        "gateway": network.gateway,
    }
    ledger.close()
    for host in (a, b):
        host.heal()
    for process in processes.values():
        hosts.kill_group(process)
    for host in (web, a, b):
        host.destroy()
    network.hosts.clear()


def test_worker_host_cut_off_mid_job_is_taken_over(cluster):
    """A worker host cut off mid-job for longer than the lease: the other host takes its tasks over
    and the job ends within lease + 10 s of the cut, every pair final with exactly one feedback;
    the cut host, healed, writes nothing for the tasks it had held, and goes on scoring."""
    api, ledger, a, b = cluster["api"], cluster["ledger"], cluster["a"], cluster["b"]
    with HostAwareScorer(cluster["gateway"], held_host=a.address) as scorer:
        project = "alice/hosts"
        api.log_calls(project, {f"c{i}": str(i) for i in range(CALLS)})
        ref = api.publish_scorer(project, "remote", "RemoteScorer", endpoint_url=scorer.score_url)
        job = api.score(project, [f"c{i}" for i in range(CALLS)], [ref])

        wait_until(
            lambda: len([r for r in scorer.scored if r.client == a.address]) >= 2,
            timeout=60,
            message="host a to be scoring",
        )
        a.cut()
        cut_at = time.monotonic()
        held = {n for n, r in enumerate(scorer.requests) if r.client == a.address}
        scorer.cut.set()
        time.sleep(CUT_SECONDS)
        a.heal()
        left = LEASE_SECONDS + 10 - (time.monotonic() - cut_at)
        wait_until(
            lambda: ledger.finished(job, CALLS),
            timeout=max(left, 1),
            message="every pair to be final within lease + 10 s of the cut",
            state=lambda: ledger.statuses(job),
        )
        logger.warning("cut-off host: job final %.1fs after the cut", time.monotonic() - cut_at)

        # The healed host goes on working: with b stopped, a alone scores a second job.
        hosts.kill_group(cluster["processes"]["b"])
        second = api.score(
            project,
            [f"c{i}" for i in range(4)],
            [api.publish_scorer(project, "remote-2", "RemoteScorer", endpoint_url=scorer.score_url)],
        )
        wait_until(lambda: ledger.finished(second, 4), timeout=60, message="the healed host to score a new job")
        # Everything a will ever write is written once it has stopped (a graceful stop finishes
        # the scorings it holds, including those whose answers it got after the cut).
        hosts.kill_group(cluster["processes"]["a"])

    assert ledger.statuses(job) == {"succeeded": CALLS}
    feedback = ledger.feedback(job)
    assert len(feedback) == CALLS
    assert len({weave_ref for weave_ref, _, _ in feedback}) == CALLS
    assert held, "host a held no scoring when it was cut off"
    results = [payload["output"] for _, _, payload in feedback]
    assert not held & {r["request"] for r in results}, "the cut-off host wrote a result for a task taken over"
    held_calls = {scorer.requests[n].json["original_call"]["id"] for n in held}
    assert {r["host"] for r in results if r["call"] in held_calls} == {b.address}
    assert {payload["output"]["host"] for _, _, payload in ledger.feedback(second)} == {a.address}
    assert ledger.feedback_in_project(project) == CALLS + 4
