"""The official weave client (weave 0.54), unchanged, against a live server and a real worker:
configured by environment variables alone, it logs @weave.op calls (nested ones too), publishes
scorers, asks us to score with `client.server.calls_score`, and reads the scores with
`call.feedback`. Nothing leaves 127.0.0.1: the test fails if anything tries."""

import asyncio
import json

import pytest

from scoring.models import TASK_UNFINISHED, Feedback, File, Object, ScoringTask
from tests.conftest import start_worker, stop_worker, wait_for
from tests.fakes import FAKE_OPENAI_KEY
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.weave_offline import loopback_only, no_version_check, weave

pytestmark = pytest.mark.slow

JUDGE_PROMPT = 'Question: {question}\nAnswer: {output}\nIs the answer correct? Reply in JSON: {{"correct": true|false}}'


def make_ops():
    """Fresh ops for each test: an op keeps the ref it was saved under, and each test has a
    fresh database."""

    @weave.op
    def answer(question: str) -> str:
        return '{"answer": "' + question.upper() + '"}'

    @weave.op
    def chat(question: str) -> str:
        return f"I think the answer to {question!r} is four."

    @weave.op
    def pipeline(question: str) -> str:
        return answer(question)

    return answer, chat, pipeline


@pytest.fixture
def fake_openai():
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY) as server:
        yield server


@pytest.fixture
def judge_worker(transactional_db, broker, fake_openai):
    """A worker process whose "openai" provider is the local fake."""
    process = start_worker(extra_env=fake_openai.provider_env())
    yield process
    stop_worker(process)


@pytest.fixture
def offline(monkeypatch):
    """No PyPI version check, and every connection outside loopback refused and listed."""
    no_version_check(monkeypatch)
    with loopback_only() as attempts:
        yield attempts
    assert attempts == []


@pytest.fixture
def weave_client(live_server, api_key, monkeypatch, offline):
    """`weave.init("alice/demo")` pointed at the live server by the three environment variables."""
    monkeypatch.setenv("WANDB_BASE_URL", live_server.url)
    monkeypatch.setenv("WF_TRACE_SERVER_URL", live_server.url)
    monkeypatch.setenv("WANDB_API_KEY", api_key)
    monkeypatch.setenv("WEAVE_USE_SERVER_CACHE", "false")
    monkeypatch.setenv("WEAVE_PRINT_CALL_LINK", "false")
    client = weave.init("alice/demo")
    yield client
    weave.finish()


def log_calls(answer, chat, pipeline) -> dict[str, object]:
    """Three top-level calls and a parent with a child; returns the weave Call objects by label."""
    _, two = answer.call("what is 2+2?")
    _, france = answer.call("capital of France?")
    _, prose = chat.call("what is 2+2?")
    _, parent = pipeline.call("nested?")
    return {"two": two, "france": france, "prose": prose, "parent": parent}


def job_finished(job_id) -> bool:
    return not ScoringTask.objects.filter(job_id=job_id, status__in=TASK_UNFINISHED).exists()


def scores(call) -> dict[str, object]:
    return {f.feedback_type: f.payload["output"] for f in call.feedback}


def test_weave_client_logs_publishes_and_reads_scores(weave_client, judge_worker, fake_openai):
    """Calls logged and scorers published by the weave client are scored by the worker, and each
    call's feedback, read back by the client, holds both scores in Weave's shape."""
    from weave.scorers import LLMAsAJudgeScorer, ValidJSONScorer

    calls = log_calls(*make_ops())
    weave_client.flush()
    children = list(weave_client.get_calls(filter={"parent_ids": [calls["parent"].id]}))
    assert [child.op_name.split("/")[-1].split(":")[0] for child in children] == ["answer"]
    calls["child"] = children[0]

    json_ref = weave.publish(ValidJSONScorer())
    judge = LLMAsAJudgeScorer(
        model={
            "llm_model_id": "openai/gpt-4o-mini",
            "default_params": {"temperature": 0.0, "max_tokens": 200, "response_format": "json_object"},
        },
        scoring_prompt=JUDGE_PROMPT,
    )
    # As in the captured client session: the feedback is named after the published name.
    judge_ref = weave.publish(judge, name="correctness-judge")

    res = weave_client.server.calls_score(
        {
            "project_id": "alice/demo",
            "call_ids": [call.id for call in calls.values()],
            "scorer_refs": [json_ref.uri(), judge_ref.uri()],
        }
    )
    wait_for(lambda: job_finished(dict(res)["job_id"]), timeout=90, message="the scoring job to finish")

    judged = json.loads(DEFAULT_ANSWER)  # what the fake model answers every question
    expected = {
        "two": True,
        "france": True,
        "prose": False,
        "parent": True,
        "child": True,
    }
    for label, call in calls.items():
        assert scores(call) == {
            "wandb.runnable.ValidJSONScorer": {"json_valid": expected[label]},
            "wandb.runnable.correctness-judge": judged,
        }, label
    feedback = next(iter(calls["two"].feedback))
    assert feedback.runnable_ref in (json_ref.uri(), judge_ref.uri())
    assert feedback.call_ref.startswith("weave:///alice/demo/call/")
    questions = sorted(c.json["messages"][-1]["content"].split("\n")[0] for c in fake_openai.completions)
    assert questions == sorted(f"Question: {call.inputs['question']}" for call in calls.values())


def test_worker_feedback_matches_the_clients_own(weave_client, worker):
    """A score our worker writes has the shape of the one the client writes when it scores the
    same call itself (`apply_scorer`): the same feedback_type, payload and runnable_ref, and a
    call_ref naming a stored scoring call whose output is the score."""
    from weave.scorers import ValidJSONScorer

    _, chat, _ = make_ops()
    _, call = chat.call("what is 2+2?")
    scorer = ValidJSONScorer()
    scorer_ref = weave.publish(scorer)
    asyncio.run(call.apply_scorer(scorer))
    weave_client.flush()
    res = weave_client.server.calls_score(
        {"project_id": "alice/demo", "call_ids": [call.id], "scorer_refs": [scorer_ref.uri()]}
    )
    wait_for(lambda: job_finished(dict(res)["job_id"]), message="the scoring job to finish")

    ours = Feedback.objects.get(task__isnull=False)
    theirs = Feedback.objects.get(task__isnull=True)
    assert (ours.feedback_type, ours.payload, ours.runnable_ref) == (
        theirs.feedback_type,
        theirs.payload,
        theirs.runnable_ref,
    )
    assert theirs.payload == {"output": {"json_valid": False}}
    for row in (ours, theirs):
        scoring_call = weave_client.get_call(row.call_ref.rsplit("/", 1)[-1])
        assert scoring_call.output == row.payload["output"]


def test_calls_and_ops_read_back(weave_client):
    """The client lists its calls, nested ones with their parent, and loads a published scorer
    back (its ops' source files were uploaded, whatever the order, under Weave's digests)."""
    from weave.scorers import ValidJSONScorer

    answer, chat, pipeline = make_ops()
    calls = log_calls(answer, chat, pipeline)
    weave_client.flush()
    listed = {call.id: call for call in weave_client.get_calls()}
    assert set(listed) >= {call.id for call in calls.values()}
    assert len(listed) == 5
    child = next(call for call in listed.values() if call.parent_id == calls["parent"].id)
    assert child.trace_id == calls["parent"].trace_id
    assert listed[calls["two"].id].output == '{"answer": "WHAT IS 2+2?"}'

    ref = weave.publish(ValidJSONScorer())
    weave_client.flush()
    loaded = weave.ref(ref.uri()).get()
    assert type(loaded).__name__ == "ValidJSONScorer"
    op_ref = weave.publish(answer)
    loaded_op = weave.ref(op_ref.uri()).get()
    assert loaded_op("ok?") == '{"answer": "OK?"}'
    referenced = {
        digest
        for val in Object.objects.filter(kind="op").values_list("val", flat=True)
        for digest in val["files"].values()
    }
    assert referenced <= set(File.objects.values_list("digest", flat=True))


def test_dataset_round_trip(weave_client):
    """A published dataset's rows go to a table and come back, row by row."""
    rows = [{"question": "2+2?", "expected": "4"}, {"question": "capital of France?", "expected": "Paris"}]
    ref = weave.publish(weave.Dataset(name="qa", rows=rows))
    loaded = weave.ref(ref.uri()).get()
    assert [dict(row) for row in loaded.rows] == rows
    assert len(loaded.rows) == 2
    row_ref = loaded.rows[1].ref.uri()
    assert dict(weave.ref(row_ref).get()) == rows[1]


def test_loopback_only_refuses_other_hosts():
    """The guard this module relies on refuses, and lists, a connection or lookup elsewhere."""
    import socket

    with loopback_only() as attempts:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("192.0.2.1", 443), timeout=1)
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("pypi.org", 443)
    assert attempts == ["connect 192.0.2.1:443", "resolve pypi.org"]
