"""Online scoring under faults, with real processes: a worker SIGKILLed and Redis emptied while
monitored calls stream in over HTTP, and calls that ended while no worker ran. Every matched call
is scored exactly once: the matching is driven by the outbox in the database."""

import signal
from datetime import UTC, datetime

import pytest
import requests

from scoring.models import TASK_UNFINISHED, Feedback, MonitorOutbox, ScoringTask
from scoring.services.objects import object_store
from scoring.weave.ids import wb_user_id_for
from tests import factories
from tests.conftest import start_worker, stop_worker, wait_for
from tests.e2e.test_faults import FAST_RECOVERY

pytestmark = pytest.mark.slow

UNFINISHED = TASK_UNFINISHED
OP = "weave:///alice/demo/op/answer"


@pytest.fixture
def workers(transactional_db, broker):
    started = []

    def start():
        process = start_worker(threads=4, extra_env=FAST_RECOVERY)
        started.append(process)
        return process

    yield start
    for process in started:
        stop_worker(process)


def publish_monitor(user) -> str:
    """A monitor on op `answer` (any digest) with ValidJSONScorer, shaped as the weave client stores it."""
    scorer = factories.scorer()
    val = {
        "_type": "Monitor",
        "_class_name": "Monitor",
        "_bases": ["Object", "BaseModel"],
        "name": "json-check",
        "active": True,
        "scorers": [scorer],
        "op_names": [f"{OP}:*"],
        "query": None,
        "sampling_rate": 1.0,
        "is_traced": True,
        "scorer_debounce_config": None,
    }
    obj = object_store(project=factories.project(), object_id="json-check", val=val, wb_user_id=wb_user_id_for(user))
    return obj.digest


def complete_batch(url: str, key: str, start: int, count: int) -> None:
    now = datetime.now(UTC).isoformat()
    batch = [
        {
            "project_id": "alice/demo",
            "id": f"call-{i}",
            "trace_id": f"trace-{i}",
            "op_name": f"{OP}:v{i % 3}",
            "started_at": now,
            "ended_at": now,
            "attributes": {},
            "inputs": {"i": i},
            "output": f'{{"n": {i}}}',
            "summary": {},
        }
        for i in range(start, start + count)
    ]
    res = requests.post(f"{url}/v2/alice/demo/calls/complete", json={"batch": batch}, auth=("api", key), timeout=60)
    assert res.status_code == 200, res.text


def assert_scored_exactly_once(calls: int):
    tasks = ScoringTask.objects.filter(job__source="monitor")
    assert not tasks.filter(status__in=UNFINISHED).exists()
    assert tasks.count() == calls
    assert tasks.filter(status="succeeded").count() == calls
    feedback = Feedback.objects.filter(task__job__source="monitor")
    assert feedback.count() == calls
    assert feedback.values("weave_ref").distinct().count() == calls
    assert not MonitorOutbox.objects.exists()


def all_scored(calls: int) -> bool:
    tasks = ScoringTask.objects.filter(job__source="monitor")
    return tasks.count() >= calls and not tasks.filter(status__in=UNFINISHED).exists()


def test_worker_killed_and_redis_emptied_while_calls_stream_in(user, api_key, live_server, workers, broker):
    """Monitored calls arrive in batches while the first worker is SIGKILLed and, later, Redis is
    emptied and its connections dropped: every call is matched and scored exactly once."""
    publish_monitor(user)
    first = workers()
    batches, size = 24, 50
    for n in range(batches):
        complete_batch(live_server.url, api_key, n * size, size)
        if n == 6:
            wait_for(lambda: Feedback.objects.exists(), timeout=60, message="the first scores")
            stop_worker(first, sig=signal.SIGKILL)
        if n == 10:
            workers()
        if n == 16:
            broker.client.flushdb()
            broker.client.client_kill_filter(_type="normal", skipme=True)
    wait_for(lambda: all_scored(batches * size), timeout=180, interval=0.5, message="every call to be scored")
    assert_scored_exactly_once(batches * size)


def test_calls_ended_while_no_worker_runs_are_scored_later(user, api_key, live_server, workers):
    """Calls whose end was committed while no worker ran (the web process could have died right
    after) wait in the outbox and are scored once a worker starts."""
    publish_monitor(user)
    complete_batch(live_server.url, api_key, 0, 40)
    assert MonitorOutbox.objects.count() == 40
    workers()
    wait_for(lambda: all_scored(40), timeout=60, message="the waiting calls to be scored")
    assert_scored_exactly_once(40)
