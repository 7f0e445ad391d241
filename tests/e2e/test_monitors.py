"""Online scoring with the official weave client (weave 0.54), a live server and a real worker:
monitors published by `Monitor.activate()` score the calls that end after it, as Weave defines it."""

import json

import pytest
import requests

from scoring.models import TASK_UNFINISHED, Call, Feedback, MonitorVersion, Object, ScoringJob, ScoringTask
from scoring.weave.monitors import sampled_in
from tests.conftest import manage, start_worker, stop_worker, wait_for
from tests.fakes import FAKE_OPENAI_KEY
from tests.fakes.openai_server import FakeOpenAI, rate_limited
from tests.weave_offline import loopback_only, no_version_check, weave

pytestmark = pytest.mark.slow

UNFINISHED = TASK_UNFINISHED


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


def test_activated_monitor_scores_new_calls_of_its_op(weave_client, monitor_worker, live_server, api_key):
    """After `activate()`, every call of the monitored op that ends is scored once, with feedback
    whose trigger_ref is the monitor's ref and whose wb_user_id is its publisher; other ops' calls
    are not scored. The API and `manage.py monitors` show the version's counts."""
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

    shown = requests.get(f"{live_server.url}/monitors/alice/demo/json-check", auth=("api", api_key), timeout=30)
    assert shown.status_code == 200
    (version,) = shown.json()["versions"]
    assert (version["ref"], version["active"], version["matched"], version["scored"]) == (ref.uri(), True, 5, 5)
    assert version["latency_p50_seconds"] is not None
    listed = manage("monitors", "--project", "alice/demo")
    assert listed.returncode == 0, listed.stderr
    assert "v0 active: matched 5, sampled out 0, scored 5, failed 0" in listed.stdout


def monitor_tasks(name: str):
    return ScoringTask.objects.filter(job__source="monitor", job__trigger_ref__contains=f"/object/{name}:")


def monitor_done(name: str, count: int) -> bool:
    tasks = monitor_tasks(name)
    return tasks.count() >= count and not tasks.filter(status__in=UNFINISHED).exists()


def scored_call_ids(name: str) -> set[str]:
    return set(monitor_tasks(name).filter(status="succeeded").values_list("call__call_id", flat=True))


def test_sampling_keeps_calls_near_its_rate_deterministically(weave_client, monitor_worker):
    """A monitor with sampling_rate 0.3 scores about 30% of 200 matching calls, exactly those its
    per-(monitor, call) hash keeps; every matched call is counted as scored or sampled out; with
    is_traced false no scoring call is recorded and the feedback has no call_ref."""
    from weave.scorers import ValidJSONScorer

    answer, _ = make_ops()
    weave.Monitor(
        name="sampled", op_names=["answer"], scorers=[ValidJSONScorer()], sampling_rate=0.3, is_traced=False
    ).activate()
    ids = [answer.call(f"q{i}")[1].id for i in range(200)]
    weave_client.flush()
    expected = {call_id for call_id in ids if sampled_in("sampled", call_id, 0.3)}
    wait_for(lambda: MonitorVersion.objects.filter(matched=200).exists(), timeout=60, message="all 200 matched")
    wait_for(lambda: monitor_done("sampled", len(expected)), timeout=60, message="the sampled calls' scores")

    assert 30 <= len(expected) <= 90
    assert scored_call_ids("sampled") == expected
    state = MonitorVersion.objects.get()
    assert state.sampled_out == 200 - len(expected)
    feedback = Feedback.objects.filter(task__job=state.job)
    assert feedback.count() == len(expected)
    assert set(feedback.values_list("call_ref", flat=True)) == {None}
    assert not Call.objects.filter(attributes__weave__kind="scorer").exists()


def test_query_selects_some_calls(weave_client, monitor_worker):
    """A monitor's query (stored by the client with its `_type` wrappers) selects the calls it
    scores: only those whose question contains "keep"."""
    from weave.scorers import ValidJSONScorer

    answer, _ = make_ops()
    query = {"$expr": {"$contains": {"input": {"$getField": "inputs.question"}, "substr": {"$literal": "keep"}}}}
    weave.Monitor(name="queried", op_names=["answer"], scorers=[ValidJSONScorer()], query=query).activate()
    stored = Object.objects.get(object_id="queried").val["query"]
    assert stored["_type"] == "Query"
    kept = {answer.call(f"keep {i}")[1].id for i in range(4)}
    for i in range(6):
        answer(f"drop {i}")
    weave_client.flush()
    wait_for(lambda: MonitorVersion.objects.filter(matched=4).exists(), timeout=60, message="the matches")
    wait_for(lambda: monitor_done("queried", 4), timeout=60, message="the kept calls' scores")
    assert scored_call_ids("queried") == kept


def test_inactive_monitor_scores_nothing(weave_client, monitor_worker):
    """A monitor published with active false scores none of the calls that an active monitor on
    the same op scores."""
    from weave.scorers import ValidJSONScorer

    answer, _ = make_ops()
    weave.publish(weave.Monitor(name="idle", op_names=["answer"], scorers=[ValidJSONScorer()]))
    weave.Monitor(name="sentinel", op_names=["answer"], scorers=[ValidJSONScorer()]).activate()
    for i in range(5):
        answer(f"q{i}")
    weave_client.flush()
    wait_for(lambda: monitor_done("sentinel", 5), timeout=60, message="the active monitor's scores")
    assert not monitor_tasks("idle").exists()
    assert not MonitorVersion.objects.filter(monitor__object_id="idle").exists()


def test_deactivation_stops_scoring_and_reactivation_resumes(weave_client, monitor_worker):
    """Calls that end after `deactivate()` are not scored by the monitor (an always-active
    sentinel shows they were matched); after `activate()` again, new calls are scored again."""
    from weave.scorers import ValidJSONScorer

    answer, _ = make_ops()
    monitor = weave.Monitor(name="toggled", op_names=["answer"], scorers=[ValidJSONScorer()])
    monitor.activate()
    weave.Monitor(name="sentinel", op_names=["answer"], scorers=[ValidJSONScorer()]).activate()

    def batch(label: str) -> set[str]:
        ids = {answer.call(f"{label} {i}")[1].id for i in range(3)}
        weave_client.flush()
        wait_for(lambda: ids <= scored_call_ids("sentinel"), timeout=60, message=f"the {label} batch")
        return ids

    first = batch("first")
    wait_for(lambda: monitor_done("toggled", 3), timeout=60, message="the first batch's scores")
    monitor.deactivate()
    batch("second")
    monitor.activate()
    third = batch("third")
    wait_for(lambda: monitor_done("toggled", 6), timeout=60, message="the third batch's scores")
    assert scored_call_ids("toggled") == first | third


def test_debounce_scores_the_last_call_of_each_trace_once(weave_client, monitor_worker):
    """With a debounce on trace_id, each trace is scored once, on its last matching call, after
    its window closes; the trace's other calls are not scored."""
    from weave.scorers import ValidJSONScorer

    answer, _ = make_ops()

    @weave.op
    def conversation(topic: str) -> str:
        return "".join(answer(f"{topic} {turn}") for turn in range(3))

    weave.Monitor(
        name="debounced",
        op_names=["answer"],
        scorers=[ValidJSONScorer()],
        scorer_debounce_config={"aggregation_field": "trace_id", "timeout_seconds": 1},
    ).activate()
    traces = [conversation.call(topic)[1] for topic in ("weather", "sports")]
    weave_client.flush()
    wait_for(lambda: monitor_done("debounced", 2), timeout=60, message="one score per trace")

    expected = set()
    for trace in traces:
        children = Call.objects.filter(trace_id=trace.trace_id, op_name__contains="/op/answer:")
        assert children.count() == 3
        expected.add(children.order_by("-ended_at", "-call_id").first().call_id)
    assert scored_call_ids("debounced") == expected
    assert monitor_tasks("debounced").count() == 2


@pytest.fixture
def judge_worker(transactional_db, broker):
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY) as fake:
        process = start_worker(threads=4, extra_env=fake.provider_env())
        yield fake
        stop_worker(process)


def classifier_monitor(names: str):
    """A ClassifierMonitor of `answer` with one LLM judge per letter, all on the same model."""
    from weave.scorers import LLMAsAJudgeScorer

    model = {"llm_model_id": "openai/gpt-4o-mini", "default_params": {"response_format": "json_object"}}
    judges = [LLMAsAJudgeScorer(name=f"judge-{k}", model=model, scoring_prompt=f"Judge {k}: {{output}}") for k in names]
    return weave.ClassifierMonitor(name="classifier", op_names=["answer"], scorers=judges).activate()


def verdict(is_match: bool, reason: str) -> dict:
    return {"is_match": is_match, "confidence": 0.9, "reason": reason}


def test_classifier_monitor_asks_its_judges_in_one_request(weave_client, judge_worker):
    """A ClassifierMonitor with three LLM judges on one model sends one provider request per call,
    whose prompt holds every judge's criteria, and writes one feedback per judge with that judge's
    own share of the answer and the monitor's trigger_ref; the request's tokens are counted once."""
    answers = {"judge-a": verdict(True, "a"), "judge-b": verdict(False, "b"), "judge-c": verdict(True, "c")}
    judge_worker.default_answer = json.dumps({"classifiers": answers})
    answer, _ = make_ops()
    ref = classifier_monitor("abc")
    calls = [answer.call(f"q{i}")[1] for i in range(3)]
    weave_client.flush()
    wait_for(lambda: monitor_done("classifier", 9), timeout=90, message="three judges on three calls")

    assert len(judge_worker.completions) == 3
    for request in judge_worker.completions:
        prompt = request.json["messages"][-1]["content"]
        assert request.json["response_format"] == {"type": "json_object"}
        for k in "abc":
            assert f'<classifier name="judge-{k}">\nJudge {k}: ' in prompt
    for call in calls:
        rows = Feedback.objects.filter(weave_ref__endswith=f"/call/{call.id}", trigger_ref=ref.uri())
        assert {row.feedback_type: row.payload["output"] for row in rows} == {
            f"wandb.runnable.{name}": entry for name, entry in answers.items()
        }
    usage = [
        c.summary.get("usage", {}).get("openai/gpt-4o-mini", {}).get("requests", 0)
        for c in Call.objects.filter(display_name__startswith="judge-")
    ]
    assert (len(usage), sum(usage)) == (9, 3)


def test_classifier_answer_malformed_for_one_judge_fails_only_its_task(weave_client, judge_worker):
    """When the merged answer's entry for one judge is malformed, that judge's task fails with a
    reason naming it, and the other judge's task of the same request succeeds."""
    answers = {"judge-a": verdict(True, "fine"), "judge-b": {"is_match": "perhaps"}}
    judge_worker.default_answer = json.dumps({"classifiers": answers})
    answer, _ = make_ops()
    classifier_monitor("ab")
    answer("q")
    weave_client.flush()
    wait_for(lambda: monitor_done("classifier", 2), timeout=90, message="two judges on one call")

    assert len(judge_worker.completions) == 1
    tasks = {t.scorer.val["name"]: t for t in monitor_tasks("classifier").select_related("scorer")}
    assert (tasks["judge-a"].status, tasks["judge-b"].status) == ("succeeded", "failed")
    assert tasks["judge-b"].error_type == "ClassifierAnswerInvalid"
    assert "'judge-b'" in tasks["judge-b"].error_message
    (feedback,) = Feedback.objects.filter(trigger_ref__contains="/object/classifier:")
    assert feedback.payload["output"] == answers["judge-a"]


def test_classifier_request_rate_limited_is_retried_for_every_judge(weave_client, judge_worker):
    """A rate-limited merged request makes each judge's task wait; the next attempt asks them
    together again, and each task succeeds on its second attempt."""
    answers = {"judge-a": verdict(True, "a"), "judge-b": verdict(False, "b")}
    judge_worker.default_answer = json.dumps({"classifiers": answers})
    judge_worker.script(rate_limited(retry_after="1"))
    answer, _ = make_ops()
    classifier_monitor("ab")
    answer("q")
    weave_client.flush()
    wait_for(lambda: monitor_done("classifier", 2), timeout=90, message="two judges, retried")

    assert len(judge_worker.completions) == 2
    tasks = list(monitor_tasks("classifier"))
    assert {(t.status, t.attempts) for t in tasks} == {("succeeded", 2)}
    assert Feedback.objects.filter(trigger_ref__contains="/object/classifier:").count() == 2


def test_backfill_applies_a_monitor_to_calls_that_ended_before_it(weave_client, monitor_worker, live_server, api_key):
    """`POST /monitors/backfill` with a monitor scores the past calls its op names select, as a
    job whose pair count is in the response; `manage.py monitors` then shows the version."""
    from weave.scorers import ValidJSONScorer

    answer, chat = make_ops()
    past = {answer.call(f"q{i}")[1].id for i in range(4)}
    chat("not this op")
    weave_client.flush()
    ref = weave.publish(weave.Monitor(name="late", op_names=["answer"], scorers=[ValidJSONScorer()]))
    weave_client.flush()

    res = requests.post(
        f"{live_server.url}/monitors/backfill",
        json={"project_id": "alice/demo", "monitor_ref": ref.uri()},
        auth=("api", api_key),
        timeout=30,
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["task_count"] == 4
    wait_for(
        lambda: not ScoringTask.objects.filter(job_id=body["job_id"], status__in=UNFINISHED).exists(),
        timeout=60,
        message="the backfill job",
    )
    job = ScoringJob.objects.get(pk=body["job_id"])
    assert job.source == "backfill"
    feedback = Feedback.objects.filter(task__job=job)
    assert {f.weave_ref.rsplit("/", 1)[-1] for f in feedback} == past
    assert {f.trigger_ref for f in feedback} == {ref.uri()}

    bad = requests.post(
        f"{live_server.url}/monitors/backfill",
        json={"project_id": "alice/demo", "monitor_ref": "weave:///alice/demo/object/nope:abc"},
        auth=("api", api_key),
        timeout=30,
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["type"] == "monitor_not_found"
