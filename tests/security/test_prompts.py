"""Untrusted templates and values are bounded: a judge prompt that could make the worker build a
huge string is refused at submit, naming the scorer ref; built-in scorers read bounded inputs."""

import pytest

from tests.conftest import wait_for
from tests.security.conftest import PROJECT, finished_tasks, log_call, publish, scorer_val

JUDGE_MODEL = {
    "_type": "LLMStructuredCompletionModel",
    "_class_name": "LLMStructuredCompletionModel",
    "_bases": ["Model", "Object", "BaseModel"],
    "llm_model_id": "openai/gpt-4o-mini",
    "default_params": {"response_format": "text"},
}


def publish_judge(http, prompt: str) -> str:
    model = publish(http, "judge-model", JUDGE_MODEL)
    return publish(http, "judge", scorer_val("LLMAsAJudgeScorer", model=model, scoring_prompt=prompt))


@pytest.mark.parametrize("prompt", ["{output:>200000000}", "{output:>1000000000000}", "{output:{width}}"])
def test_prompt_with_a_format_spec_is_refused_at_submit(http, prompt):
    """A judge prompt whose placeholder carries a format spec (a width makes the worker allocate
    that many characters) gets a 422 at submit that names the scorer ref; no job is created."""
    log_call(http)
    ref = publish_judge(http, prompt)

    response = http.post("/calls/score", json={"project_id": PROJECT, "call_ids": ["c1"], "scorer_refs": [ref]})

    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "scorer_refs", 0] and problem["type"] == "scorer_invalid"
    assert ref in problem["msg"] and "format spec" in problem["msg"]


def test_prompt_with_a_small_format_spec_is_accepted(http):
    """A literal format spec with a small width (Weave formats prompts with str.format) is accepted."""
    log_call(http)
    ref = publish_judge(http, "[{output:>10}]")

    response = http.post("/calls/score", json={"project_id": PROJECT, "call_ids": ["c1"], "scorer_refs": [ref]})

    assert response.status_code == 200, response.text


def test_prompt_longer_than_the_limit_is_refused_at_submit(http, settings):
    """A prompt template longer than SCORING_JUDGE_PROMPT_MAX_CHARS is refused at submit."""
    settings.SCORING_JUDGE_PROMPT_MAX_CHARS = 100
    log_call(http)
    ref = publish_judge(http, "{output} " + "x" * 200)

    response = http.post("/calls/score", json={"project_id": PROJECT, "call_ids": ["c1"], "scorer_refs": [ref]})

    assert response.status_code == 422 and ref in response.json()["detail"][0]["msg"]


@pytest.mark.slow
def test_builtin_scorer_refuses_an_input_over_the_bound(http, run_worker):
    """A Levenshtein scoring of texts over its bound fails as InputTooLarge instead of spending
    minutes of a worker's CPU; a small one still succeeds."""
    run_worker(SCORING_SCORER_INPUT_MAX_CHARS="1000")
    log_call(http, "big", output="a" * 5_000, inputs={"target": "b" * 5_000})
    log_call(http, "small", output="kitten", inputs={"target": "sitting"})
    ref = publish(http, "lev", scorer_val("LevenshteinScorer"))

    response = http.post(
        "/calls/score", json={"project_id": PROJECT, "call_ids": ["big", "small"], "scorer_refs": [ref]}
    )
    job_id = response.json()["job_id"]
    tasks = {t["call_id"]: t for t in wait_for(lambda: finished_tasks(http, job_id), message="the job to finish")}

    assert tasks["big"]["status"] == "failed" and tasks["big"]["error_type"] == "InputTooLarge"
    assert tasks["small"]["status"] == "succeeded"
