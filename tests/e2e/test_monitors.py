"""Online scoring with the official weave client (weave 0.54), a live server and a real worker:
monitors published by `Monitor.activate()` score the calls that end after it, as Weave defines it."""

import pytest

from scoring.models import Feedback, MonitorVersion, ScoringJob, ScoringTask
from tests.conftest import start_worker, stop_worker, wait_for
from tests.weave_offline import loopback_only, no_version_check, weave

pytestmark = pytest.mark.slow

UNFINISHED = ["queued", "running", "waiting"]


@pytest.fixture
def weave_client(live_server, api_key, monkeypatch):
    """`weave.init("alice/demo")` against the live server; nothing may leave 127.0.0.1."""
    no_version_check(monkeypatch)
    for name, value in {
        "WANDB_BASE_URL": live_server.url,
        "WF_TRACE_SERVER_URL": live_server.url,
        "WANDB_API_KEY": api_key,
        "WEAVE_USE_SERVER_CACHE": "false",
        "WEAVE_PRINT_CALL_LINK": "false",
    }.items():
        monkeypatch.setenv(name, value)
    with loopback_only() as attempts:
        client = weave.init("alice/demo")
        yield client
        weave.finish()
    assert attempts == []


@pytest.fixture
def monitor_worker(transactional_db, broker):
    process = start_worker(threads=4)
    yield process
    stop_worker(process)


def make_ops():
    @weave.op
    def answer(question: str) -> str:
        return '{"answer": "' + question.upper() + '"}'

    @weave.op
    def chat(question: str) -> str:
        return f"I think the answer to {question!r} is four."

    return answer, chat


def settled(count: int) -> bool:
    """`count` monitor tasks exist and none is left to run."""
    tasks = ScoringTask.objects.filter(job__source="monitor")
    return tasks.count() >= count and not tasks.filter(status__in=UNFINISHED).exists()


def test_activated_monitor_scores_new_calls_of_its_op(weave_client, monitor_worker):
    """After `activate()`, every call of the monitored op that ends is scored once, with feedback
    whose trigger_ref is the monitor's ref and whose wb_user_id is its publisher; other ops' calls
    are not scored."""
    from weave.scorers import ValidJSONScorer

    answer, chat = make_ops()
    monitor = weave.Monitor(name="json-check", op_names=["answer"], scorers=[ValidJSONScorer()])
    ref = monitor.activate()
    for i in range(5):
        answer(f"q{i}")
        chat(f"q{i}")
    weave_client.flush()
    wait_for(lambda: settled(5), timeout=60, message="the monitor's five tasks to finish")

    feedback = list(Feedback.objects.filter(task__job__source="monitor"))
    assert len(feedback) == 5
    assert {f.trigger_ref for f in feedback} == {ref.uri()}
    assert {f.payload["output"]["json_valid"] for f in feedback} == {True}
    job = ScoringJob.objects.get(source="monitor")
    assert {f.wb_user_id for f in feedback} == {job.wb_user_id}
    assert job.trigger_ref == ref.uri()
    assert MonitorVersion.objects.get().matched == 5
