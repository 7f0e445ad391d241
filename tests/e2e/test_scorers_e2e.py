"""Server-side scorers end to end: a real worker process scores calls with an LLM judge against a
real local OpenAI-compatible server and with a remote scorer against a real local endpoint;
providers fail and the service does not."""

import json

import pytest

from scoring.models import TASK_UNFINISHED, Call, Feedback, ScoringJob, ScoringTask
from scoring.scorers import blocks
from scoring.services.jobs import job_submit
from scoring.services.objects import object_store
from tests import factories
from tests.conftest import start_worker, stop_worker, wait_for
from tests.fakes import FAKE_OPENAI_KEY, FAST_HTTP_ENV, LOOPBACK_ALLOWLIST_ENV
from tests.fakes.openai_server import FakeOpenAI, answer, rate_limited, server_error
from tests.fakes.remote_scorer import FakeRemoteScorer

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.fakes.fixtures"]

Status = ScoringTask.Status
RETRY_FAST = {"SCORING_RETRY_BASE_DELAY": "0.1", "SCORING_RETRY_MAX_DELAY": "0.5", "SCORING_MAX_ATTEMPTS": "3"}


@pytest.fixture
def run_worker(transactional_db, broker):
    started = []

    def start(**env):
        started.append(start_worker(threads=4, extra_env={**FAST_HTTP_ENV, **RETRY_FAST, **env}))

    yield start
    for process in started:
        stop_worker(process)


def publish_judge(response_format="json_object", prompt="Question: {question}\nAnswer: {output}\nJSON please."):
    project = factories.project()
    model = object_store(
        project=project,
        object_id="judge-model",
        val={
            "_type": "LLMStructuredCompletionModel",
            "_class_name": "LLMStructuredCompletionModel",
            "_bases": ["Model", "Object", "BaseModel"],
            "llm_model_id": "openai/gpt-4o-mini",
            "default_params": {"temperature": 0.0, "max_tokens": 100, "response_format": response_format},
        },
    )
    return factories.scorer(
        class_name="LLMAsAJudgeScorer",
        object_id="correctness-judge",
        model=f"weave:///alice/demo/object/judge-model:{model.digest}",
        scoring_prompt=prompt,
    )


def submit(user, call_ids, refs) -> ScoringJob:
    request = {"project_id": "alice/demo", "call_ids": call_ids, "scorer_refs": refs}
    return job_submit(user=user, project_id="alice/demo", call_ids=call_ids, scorer_refs=refs, request=request).job


def finished(job):
    return lambda: not ScoringTask.objects.filter(job=job, status__in=TASK_UNFINISHED).exists()


def test_llm_judge_scores_and_records_what_it_asked(user, fake_openai, run_worker):
    """The judge's JSON answer is the score; the scoring call records the arguments and the token
    usage under the model id; the provider got the formatted prompt and the model's parameters."""
    factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
    fake_openai.script(
        answer(
            '{"correct": true, "reason": "arithmetic"}',
            usage={"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        )
    )
    job = submit(user, ["c1"], [publish_judge()])
    run_worker(**fake_openai.provider_env("openai"))
    wait_for(finished(job), timeout=60, message="the judge task")

    feedback = Feedback.objects.get()
    assert feedback.feedback_type == "wandb.runnable.correctness-judge"  # the name it was published under
    assert feedback.payload == {"output": {"correct": True, "reason": "arithmetic"}}
    scoring_call = Call.objects.get(call_id=feedback.call_ref.rsplit("/", 1)[1])
    assert scoring_call.summary["usage"]["openai/gpt-4o-mini"]["total_tokens"] == 18
    assert scoring_call.inputs["question"] == "2+2?"
    sent = fake_openai.completions[0].json
    assert sent["model"] == "gpt-4o-mini"
    assert sent["temperature"] == 0.0
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["messages"][-1] == {"role": "user", "content": "Question: 2+2?\nAnswer: 4\nJSON please."}


def test_rate_limits_and_server_errors_are_retried(user, fake_openai, run_worker):
    """429 (with Retry-After) and 500 are retried; the task waits, counts its attempts, and
    succeeds once the provider answers."""
    factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
    fake_openai.script(rate_limited(retry_after="0.2"), server_error(503), answer('{"correct": true}'))
    job = submit(user, ["c1"], [publish_judge()])
    run_worker(**fake_openai.provider_env("openai"))
    wait_for(finished(job), timeout=60, message="the retried judge task")

    task = ScoringTask.objects.get(job=job)
    assert (task.status, task.attempts) == (Status.SUCCEEDED, 3)
    assert Feedback.objects.get().payload == {"output": {"correct": True}}
    assert len(fake_openai.completions) == 3
    # Each attempt sent the same request again.
    assert [r.json["messages"] == fake_openai.completions[0].json["messages"] for r in fake_openai.completions] == [
        True
    ] * 3


def test_provider_that_keeps_failing_fails_the_task_with_its_reason(user, fake_openai, run_worker):
    """After the last attempt the task fails with the provider's error; no score is stored."""
    factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
    fake_openai.script(*[server_error(500, "overloaded, sorry")] * 5)
    job = submit(user, ["c1"], [publish_judge()])
    run_worker(**fake_openai.provider_env("openai"))
    wait_for(finished(job), timeout=60, message="the failing judge task")

    task = ScoringTask.objects.get(job=job)
    assert task.status == Status.FAILED
    assert task.attempts == 3
    assert "Gave up after 3 attempts" in task.error_message
    assert "overloaded, sorry" in task.error_message
    assert Feedback.objects.count() == 0


def test_provider_refusing_the_key_blocks_it_and_the_key_never_leaks(user, run_worker):
    """A 401 blocks the provider: the task waits, without spending an attempt, with the provider's
    message; the API key appears in no error, scoring call or feedback, even when the provider
    echoes it."""
    with FakeOpenAI(api_key="sk-some-other-key-that-the-server-expects") as provider:
        factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
        job = submit(user, ["c1"], [publish_judge()])
        # The server is configured with FAKE_OPENAI_KEY, which this provider rejects with a 401
        # that echoes it back, as OpenAI does.
        env = {"SCORING_PROVIDERS": json.dumps({"openai": {"base_url": provider.base_url, "api_key": FAKE_OPENAI_KEY}})}
        try:
            run_worker(**env)
            task = wait_for(
                lambda: ScoringTask.objects.filter(
                    job=job, status=Status.WAITING, error_type="ProviderBlocked"
                ).first(),
                timeout=60,
                message="the blocked judge task",
            )
            assert task.attempts == 0
            assert "Incorrect API key" in task.error_message
            stored = json.dumps(list(ScoringTask.objects.values()), default=str) + json.dumps(
                list(Call.objects.values("inputs", "output", "exception", "summary")), default=str
            )
            assert FAKE_OPENAI_KEY not in stored
            assert FAKE_OPENAI_KEY not in json.dumps(blocks.provider_blocked("openai"))
        finally:
            blocks.provider_unblock("openai")


def test_unparseable_judge_answer_is_a_failure_with_the_raw_answer(user, fake_openai, run_worker):
    """A judge answer that is not the JSON asked for fails the task, quoting the answer."""
    factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
    fake_openai.script(answer("I think it is correct."))
    job = submit(user, ["c1"], [publish_judge()])
    run_worker(**fake_openai.provider_env("openai"))
    wait_for(finished(job), timeout=60, message="the judge task")
    task = ScoringTask.objects.get(job=job)
    assert (task.status, task.error_type) == (Status.FAILED, "JudgeAnswerNotJSON")
    assert "I think it is correct." in task.error_message
    assert Feedback.objects.count() == 0


def test_missing_prompt_argument_names_it(user, fake_openai, run_worker):
    """A prompt placeholder that is not among the call's inputs fails the task, naming it."""
    factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
    job = submit(user, ["c1"], [publish_judge(prompt="Expected {expected}, got {output}")])
    run_worker(**fake_openai.provider_env("openai"))
    wait_for(finished(job), timeout=60, message="the judge task")
    task = ScoringTask.objects.get(job=job)
    assert task.error_type == "MissingArgument"
    assert "'expected'" in task.error_message
    assert "question" in task.error_message
    assert fake_openai.completions == []


def test_per_provider_limit_holds_across_worker_processes(user, run_worker):
    """With a limit of 2, two worker processes of 4 threads never have more than 2 requests in
    flight to the provider, and every pair is scored."""
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY, latency=0.2) as provider:
        for i in range(12):
            factories.call(call_id=f"c{i}", output="4", inputs={"question": f"q{i}"})
        job = submit(user, [f"c{i}" for i in range(12)], [publish_judge()])
        env = provider.provider_env("openai", concurrency=2)
        run_worker(**env)
        run_worker(**env)
        wait_for(finished(job), timeout=90, message="the limited judge tasks")
        assert provider.max_in_flight == 2
        assert Feedback.objects.count() == 12


def test_remote_scorer_end_to_end(user, run_worker):
    """A RemoteScorer's endpoint gets Weave's request for each call, with a stable
    Idempotency-Key, and its result is the score."""
    with FakeRemoteScorer() as endpoint:
        factories.call(call_id="c1", output="four", inputs={"question": "2+2?"})
        ref = factories.scorer(class_name="RemoteScorer", object_id="remote", endpoint_url=endpoint.score_url)
        job = submit(user, ["c1"], [ref])
        run_worker(**LOOPBACK_ALLOWLIST_ENV)
        wait_for(finished(job), timeout=60, message="the remote scorer task")

        task = ScoringTask.objects.get(job=job)
        assert task.status == Status.SUCCEEDED, task.error_message
        (request,) = endpoint.scored
        assert request.json["original_call"]["id"] == "c1"
        assert request.headers["idempotency-key"] == f"{job.pk}:{task.pk}"
        assert Feedback.objects.get().runnable_ref == ref


def test_remote_scorer_to_a_private_address_is_refused(user, run_worker):
    """Without an allowlist, a remote scorer pointing at a loopback address is refused: the task
    fails saying why, and nothing is sent."""
    with FakeRemoteScorer() as endpoint:
        factories.call(call_id="c1", output="four")
        ref = factories.scorer(class_name="RemoteScorer", object_id="remote", endpoint_url=endpoint.score_url)
        job = submit(user, ["c1"], [ref])
        run_worker()
        wait_for(finished(job), timeout=60, message="the refused remote scorer task")
        task = ScoringTask.objects.get(job=job)
        assert task.status == Status.FAILED
        assert "127.0.0.1" in task.error_message
        assert endpoint.scored == []


def test_time_limit_per_scorer_family(user, run_worker):
    """A judge that never answers is cut off within its family's time limit (not the longer HTTP
    timeout), as a clean timeout before the limit would interrupt the thread, tried again, and
    fails after the last attempt, saying why."""
    from tests.fakes.openai_server import hang

    with FakeOpenAI(api_key=FAKE_OPENAI_KEY) as provider:
        provider.script(hang(), hang(), hang())
        factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
        job = submit(user, ["c1"], [publish_judge()])
        run_worker(
            **provider.provider_env("openai"),
            SCORING_TIME_LIMITS=json.dumps({"LLMAsAJudgeScorer": 2}),
            SCORING_HTTP_TIMEOUT="30",
        )
        wait_for(finished(job), timeout=60, message="the timed-out judge task")
        task = ScoringTask.objects.get(job=job)
        assert (task.status, task.error_type, task.attempts) == (Status.FAILED, "ProviderTimeout", 3)
        assert "did not answer in time" in task.error_message
        assert Feedback.objects.count() == 0
