"""LLMAsAJudgeScorer: Weave's prompt semantics, nested refs, response formats and failures,
against a real local OpenAI-compatible server."""

import pytest

from scoring.engine.run import task_run
from scoring.models import Call, Feedback, ScoringTask
from scoring.scorers.base import MissingArgument, RetryableError, ScorerConfigError, ScorerFailed
from scoring.scorers.llm import LLMAsAJudgeScorer
from scoring.services.jobs import job_submit
from scoring.services.objects import object_store
from tests import factories
from tests.fakes import FAKE_OPENAI_KEY, scoring_context
from tests.fakes.openai_server import answer, server_error

pytest_plugins = ["tests.fakes.fixtures"]

MODEL_REF = "weave:///alice/demo/object/LLMStructuredCompletionModel:UqntP6YknEQ3yT1OfTC7DRdQuf09lhSonydoNIaTl20"
# The prompt the weave client published in the reference traffic (request 19).
WEAVE_PROMPT = (
    "Question: {question}\nAnswer: {output}\n"
    'Is the answer correct? Reply in JSON: {{"correct": true|false, "reason": "..."}}'
)


def model_val(llm_model_id: str = "openai/gpt-4o-mini", **params) -> dict:
    """An LLMStructuredCompletionModel as the weave client publishes it (request 18)."""
    default_params = {
        "_type": "LLMStructuredCompletionModelDefaultParams",
        "messages_template": None,
        "prompt": None,
        "temperature": 0.0,
        "top_p": None,
        "max_tokens": 200,
        "presence_penalty": None,
        "frequency_penalty": None,
        "stop": None,
        "n_times": None,
        "functions": None,
        "response_format": "json_object",
        "_class_name": "LLMStructuredCompletionModelDefaultParams",
        "_bases": ["BaseModel"],
        **params,
    }
    return {
        "_type": "LLMStructuredCompletionModel",
        "name": None,
        "description": None,
        "llm_model_id": llm_model_id,
        "default_params": default_params,
        "_class_name": "LLMStructuredCompletionModel",
        "_bases": ["Model", "Object", "BaseModel"],
    }


def judge_val(prompt: str = WEAVE_PROMPT, model=MODEL_REF, **fields) -> dict:
    """An LLMAsAJudgeScorer as the weave client publishes it (request 19)."""
    return {
        "_type": "LLMAsAJudgeScorer",
        "name": None,
        "description": None,
        "column_map": None,
        "model": model,
        "scoring_prompt": prompt,
        "enable_image_input_scoring": False,
        "enable_audio_input_scoring": False,
        "enable_video_input_scoring": False,
        "media_scoring_json_paths": None,
        "_class_name": "LLMAsAJudgeScorer",
        "_bases": ["Scorer", "Object", "BaseModel"],
        **fields,
    }


def resolver(objects: dict):
    """A ref resolver over a dict, failing like the task runner's for an unknown ref."""

    def resolve(ref: str):
        if ref not in objects:
            raise ScorerConfigError(f"Object {ref} does not exist in this project")
        return objects[ref]

    return resolve


def judge(prompt: str = WEAVE_PROMPT, *, model: dict | None = None, **fields) -> LLMAsAJudgeScorer:
    return LLMAsAJudgeScorer(judge_val(prompt, **fields), resolver({MODEL_REF: model or model_val()}))


def score(scorer, output="4", inputs=None):
    inputs = {"question": "What is 2 + 2?"} if inputs is None else inputs
    return scorer.run(scorer.arguments(output, inputs), scoring_context())


def test_weave_published_judge_scores_a_call(openai_provider):
    """The judge the weave client publishes asks the model with the formatted prompt and Weave's
    parameters, and the parsed JSON answer is the score, with token usage under the model id."""
    openai_provider.script(
        answer('{"correct": true, "reason": "2 + 2 = 4"}', usage={"prompt_tokens": 30, "completion_tokens": 12})
    )

    outcome = score(judge())

    sent = openai_provider.completions[0].json
    assert sent == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": WEAVE_PROMPT.format(output="4", question="What is 2 + 2?")}],
        "temperature": 0.0,
        "max_tokens": 200,
        "response_format": {"type": "json_object"},
    }
    assert outcome.output == {"correct": True, "reason": "2 + 2 = 4"}
    assert outcome.usage == {
        "openai/gpt-4o-mini": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42, "requests": 1}
    }


# Each prompt must come out exactly as Python's str.format makes it (Weave calls .format).
FORMAT_CASES = [
    ("Q: {question} A: {output}", {"question": "2+2?"}, "4"),
    ('Reply {{"correct": bool}} about {output}', {}, "4"),
    ("{{question}} is literal, {question} is not", {"question": "q"}, "o"),
    ("{question!r} -> {output!s}", {"question": "it's"}, "x"),
    ("[{n:>5}] [{n:05.1f}]", {"n": 3.14159}, "o"),
    ("first item: {items[0]}, name: {person[name]}", {"items": ["a", "b"], "person": {"name": "Ada"}}, "o"),
    ("output as a dict: {output}", {}, {"answer": 4}),
    ("{question}{question}", {"question": "twice"}, "o"),
    ("unicode: {question} ✓", {"question": "élan"}, "o"),
]


@pytest.mark.parametrize(("prompt", "inputs", "output"), FORMAT_CASES)
def test_prompt_is_formatted_like_str_format(openai_provider, prompt, inputs, output):
    """The user message is `scoring_prompt.format(output=output, **inputs)`."""
    score(judge(prompt, model=model_val(response_format="text")), output=output, inputs=inputs)

    assert openai_provider.completions[0].json["messages"][-1] == {
        "role": "user",
        "content": prompt.format(output=output, **inputs),
    }


def test_placeholders_are_the_parameters():
    """The prompt's placeholders other than `output` are the arguments taken from the inputs."""
    scorer = judge("{context} / {question} / {output} / {context} / {item[0]} / {n:>5}")

    assert scorer.params == ("context", "question", "item", "n")


def test_column_map_renames_a_placeholder(openai_provider):
    """column_map {"question": "query"} fills {question} from the call's `query` input."""
    scorer = judge(
        "Q: {question} A: {output}", column_map={"question": "query"}, model=model_val(response_format="text")
    )

    score(scorer, inputs={"query": "What is 2 + 2?", "question": "ignored"})

    assert openai_provider.completions[0].json["messages"][-1]["content"] == "Q: What is 2 + 2? A: 4"


def test_missing_placeholder_names_it_and_the_inputs(openai_provider):
    """A placeholder the call's inputs do not have fails, naming it and the available keys."""
    scorer = judge("Context: {context}\nQ: {question}\nA: {output}")

    with pytest.raises(MissingArgument) as excinfo:
        scorer.arguments("4", {"question": "q", "user": "u"})

    assert "{context}" in str(excinfo.value) and "question, user" in str(excinfo.value)
    assert openai_provider.requests == []


def test_nested_refs_are_resolved():
    """The model ref, and a default_params ref inside it, are resolved from the object store."""
    params_ref = "weave:///alice/demo/object/judge-params:abc"
    model = {**model_val(), "default_params": params_ref}
    objects = {MODEL_REF: model, params_ref: {"temperature": 0.5, "response_format": "text"}}

    scorer = LLMAsAJudgeScorer(judge_val(), resolver(objects))

    assert scorer.model.llm_model_id == "openai/gpt-4o-mini"
    assert scorer.model.params == {"temperature": 0.5}
    assert scorer.model.wants_json is False


def test_unresolvable_model_ref_is_a_config_error():
    """A model ref that is not in the project makes the scorer unusable."""
    with pytest.raises(ScorerConfigError, match="does not exist"):
        LLMAsAJudgeScorer(judge_val(), resolver({}))


def test_inline_model_needs_no_resolver():
    """A model stored inline (not as a ref) is read as is."""
    scorer = LLMAsAJudgeScorer(judge_val(model=model_val("local/llama-3")))

    assert scorer.model.llm_model_id == "local/llama-3"


def test_messages_template_comes_before_the_prompt(openai_provider):
    """messages_template messages are sent first, then the formatted prompt as a user message."""
    template = [
        {"role": "system", "content": "You are a strict grader. Answer in JSON.", "name": None},
        {"role": "user", "content": "Grade tersely."},
    ]
    scorer = judge(model=model_val(messages_template=template))

    score(scorer)

    messages = openai_provider.completions[0].json["messages"]
    assert messages[:2] == [
        {"role": "system", "content": "You are a strict grader. Answer in JSON."},
        {"role": "user", "content": "Grade tersely."},
    ]
    assert messages[2]["role"] == "user" and messages[2]["content"].startswith("Question: What is 2 + 2?")


SCHEMA = {"type": "object", "properties": {"correct": {"type": "boolean"}}, "required": ["correct"]}
RESPONSE_FORMAT_CASES = [
    # (model params, what is sent as response_format, the answer, the score)
    ({"response_format": "json_object"}, {"type": "json_object"}, '{"correct": false}', {"correct": False}),
    ({"response_format": "json"}, {"type": "json_object"}, '[1, 2, "x"]', [1, 2, "x"]),
    ({"response_format": "json_object"}, {"type": "json_object"}, '```json\n{"correct": true}\n```', {"correct": True}),
    ({"response_format": "text"}, None, "Yes, it is correct.", "Yes, it is correct."),
    ({"response_format": None}, None, '{"looks": "like json"}', '{"looks": "like json"}'),
    (
        {"response_format": "json_schema", "response_format_schema": SCHEMA},
        {"type": "json_schema", "json_schema": {"name": "judgement", "schema": SCHEMA}},
        '{"correct": true}',
        {"correct": True},
    ),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "g", "schema": SCHEMA, "strict": True}}},
        {"type": "json_schema", "json_schema": {"name": "g", "schema": SCHEMA, "strict": True}},
        '{"correct": true}',
        {"correct": True},
    ),
]


@pytest.mark.parametrize(("params", "sent_format", "answer_text", "expected"), RESPONSE_FORMAT_CASES)
def test_response_formats(openai_provider, params, sent_format, answer_text, expected):
    """JSON formats are requested and parsed into the score; text answers are the score as is."""
    openai_provider.script(answer(answer_text))

    outcome = score(judge(model=model_val(**params)))

    assert openai_provider.completions[0].json.get("response_format") == sent_format
    assert outcome.output == expected


def test_sampling_params_are_passed_through(openai_provider):
    """temperature, top_p, max_tokens, penalties and stop are sent; unset ones are not."""
    model = model_val(temperature=0.2, top_p=0.9, max_tokens=50, frequency_penalty=0.1, stop=["\n\n"], n_times=3)

    score(judge(model=model))

    sent = openai_provider.completions[0].json
    assert {k: sent[k] for k in ("temperature", "top_p", "max_tokens", "frequency_penalty", "stop")} == {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 50,
        "frequency_penalty": 0.1,
        "stop": ["\n\n"],
    }
    assert "presence_penalty" not in sent and "n" not in sent


@pytest.mark.parametrize("answer_text", ["The answer is correct.", "", '{"correct": tru', "NaN"])
def test_unparseable_answer_fails_with_the_raw_answer(openai_provider, answer_text):
    """A judge asked for JSON that answers something else fails; the error quotes the answer."""
    openai_provider.script(answer(answer_text))

    with pytest.raises(ScorerFailed) as excinfo:
        score(judge())

    assert excinfo.value.error_type == "JudgeAnswerNotJSON"
    assert repr(answer_text) in str(excinfo.value)


def test_long_unparseable_answer_is_truncated(openai_provider):
    """The raw answer in the error is cut to a readable length."""
    openai_provider.script(answer("x" * 50_000))

    with pytest.raises(ScorerFailed) as excinfo:
        score(judge())

    assert len(str(excinfo.value)) < 1_500
    assert "50000 characters" in str(excinfo.value)


def test_unknown_provider_fails_naming_configured_ones(openai_provider):
    """A judge on a provider the server does not know fails, listing the configured providers."""
    with pytest.raises(ScorerFailed) as excinfo:
        score(judge(model=model_val("mistral/mistral-large")))

    assert excinfo.value.error_type == "UnknownProvider"
    assert "'mistral'" in str(excinfo.value) and "openai" in str(excinfo.value)


def test_provider_model_refs_are_refused():
    """llm_model_id may not be a ref to a user-published provider (it would choose where keys go)."""
    with pytest.raises(ScorerConfigError, match="not supported"):
        judge(model=model_val("weave:///alice/demo/object/my-provider-model:abc"))


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("Is {} right?", "positional"),
        ("Is {0} right?", "positional"),
        ("Unbalanced {output", "not a valid format string"),
        ("Single } brace", "not a valid format string"),
        ("{output.__class__}", "private attribute"),
        ("{output:>200000000}", "format spec"),
        ("{n:{width}}", "format spec"),
        ("{n:.5000f}", "format spec"),
        ("", "needs a scoring_prompt"),
    ],
)
def test_bad_prompts_are_config_errors(prompt, message):
    """A prompt str.format cannot use by name is refused when the scorer is loaded."""
    with pytest.raises(ScorerConfigError, match=message):
        judge(prompt)


def test_media_scoring_is_refused():
    """Media judges need inputs this server does not send; they are refused, not half-run."""
    with pytest.raises(ScorerConfigError, match="enable_image_input_scoring"):
        judge(enable_image_input_scoring=True)


def test_format_failure_on_a_value_fails_the_scoring(openai_provider):
    """A placeholder whose value does not support its format spec fails that scoring only."""
    scorer = judge("{question:.2f} {output}")

    with pytest.raises(ScorerFailed) as excinfo:
        score(scorer, inputs={"question": "not a number"})

    assert excinfo.value.error_type == "PromptFormatError"
    assert openai_provider.requests == []


def test_rendered_prompt_over_the_limit_fails_before_it_is_built(openai_provider, settings):
    """A call whose values would make the prompt longer than SCORING_JUDGE_PROMPT_MAX_CHARS fails
    the scoring as PromptTooLarge, without a request to the provider."""
    settings.SCORING_JUDGE_PROMPT_MAX_CHARS = 1_000

    with pytest.raises(ScorerFailed) as excinfo:
        score(judge(), output="x" * 2_000)

    assert excinfo.value.error_type == "PromptTooLarge"
    assert openai_provider.requests == []


def test_judge_is_slow():
    """Judges wait on the network, so the runner treats them as slow."""
    assert LLMAsAJudgeScorer.slow is True


# Through the task runner: the judge's score becomes feedback, its usage the scoring call's.


@pytest.fixture
def judge_ref(db):
    project = factories.project()
    model = object_store(project=project, object_id="LLMStructuredCompletionModel", val=model_val())
    model_ref = f"weave:///alice/demo/object/LLMStructuredCompletionModel:{model.digest}"
    return factories.scorer(
        class_name="LLMAsAJudgeScorer",
        object_id="correctness-judge",
        **{k: v for k, v in judge_val(model=model_ref).items() if k not in ("_type", "_class_name", "_bases")},
    )


def submit_one(user, ref):
    factories.call(call_id="c1", output="4", inputs={"question": "What is 2 + 2?"})
    request = {"project_id": "alice/demo", "call_ids": ["c1"], "scorer_refs": [ref]}
    job = job_submit(user=user, project_id="alice/demo", call_ids=["c1"], scorer_refs=[ref], request=request).job
    return job.tasks.get()


def test_task_runner_records_judge_score_and_usage(openai_provider, judge_ref, user):
    """Run by the task runner, the judge's answer is the feedback and its usage is recorded."""
    openai_provider.script(answer('{"correct": true}', usage={"prompt_tokens": 5, "completion_tokens": 4}))
    task = submit_one(user, judge_ref)

    assert task_run(task_id=task.pk).status == ScoringTask.Status.SUCCEEDED

    feedback = Feedback.objects.get()
    assert feedback.feedback_type == "wandb.runnable.correctness-judge"  # the name it was published under
    assert feedback.payload == {"output": {"correct": True}}
    scoring_call = Call.objects.get(call_id=feedback.call_ref.rsplit("/", 1)[1])
    assert scoring_call.summary["usage"]["openai/gpt-4o-mini"]["total_tokens"] == 9
    assert scoring_call.inputs["question"] == "What is 2 + 2?"


def test_task_runner_gives_up_with_the_provider_error(openai_provider, judge_ref, user, settings):
    """A provider that keeps failing: the task waits, retries, then fails with the last error,
    and no feedback is written."""
    settings.SCORING_MAX_ATTEMPTS = 2
    openai_provider.script(server_error(503, f"overloaded ({FAKE_OPENAI_KEY})"), server_error(503, "overloaded"))
    task = submit_one(user, judge_ref)

    assert task_run(task_id=task.pk).status == ScoringTask.Status.WAITING
    assert task_run(task_id=task.pk).status == ScoringTask.Status.FAILED

    task.refresh_from_db()
    assert task.error_type == "ProviderError"
    assert task.error_message.startswith("Gave up after 2 attempts: Provider 'openai' answered 503")
    assert not Feedback.objects.exists()
    assert FAKE_OPENAI_KEY not in task.error_message


def test_retryable_error_carries_no_key(openai_provider):
    """Even the transient errors that are stored while a task waits are redacted."""
    openai_provider.script(server_error(500, f"key {FAKE_OPENAI_KEY} rejected upstream"))

    with pytest.raises(RetryableError) as excinfo:
        score(judge())

    assert FAKE_OPENAI_KEY not in str(excinfo.value)
