"""RemoteScorer: Weave's remote scorer contract (schema_version 1), retry classification and the
SSRF guard, against a real local endpoint."""

import pytest

from scoring.scorers.base import RetryableError, ScorerConfigError, ScorerFailed
from scoring.scorers.remote import RemoteScorer
from tests.fakes import scoring_context
from tests.fakes.remote_scorer import error, hang, redirect, result
from tests.fakes.server import Reply

pytest_plugins = ["tests.fakes.fixtures"]

SCORER_REF = "weave:///alice/demo/object/policy-remote:digest1"


def remote_val(endpoint_url: str, **fields) -> dict:
    """A RemoteScorer object as the weave client publishes it."""
    return {
        "_type": "RemoteScorer",
        "_class_name": "RemoteScorer",
        "_bases": ["Scorer", "Object", "BaseModel"],
        "name": "policy_remote",
        "description": None,
        "column_map": None,
        "endpoint_url": endpoint_url,
        "config": {"threshold": 0.8},
        **fields,
    }


def run(scorer, context=None):
    context = context or scoring_context(scorer_ref=SCORER_REF)
    return scorer.run(scorer.arguments(context.call.get("output"), context.call.get("inputs", {})), context)


@pytest.fixture
def remote(fake_remote_scorer, allow_loopback):
    return RemoteScorer(remote_val(fake_remote_scorer.score_url))


def test_request_follows_weave_contract(remote, fake_remote_scorer):
    """The body is Weave's schema_version 1 request: the call, the scoring call id and the scorer;
    the headers carry the idempotency key and schema version."""
    context = scoring_context(scorer_ref=SCORER_REF, task_key="job-9:42")
    call = context.call

    run(remote, context)

    request = fake_remote_scorer.scored[0]
    assert request.json == {
        "schema_version": 1,
        "original_call": {**call, "call_id": call["id"]},
        "scoring_call_id": context.scoring_call_id,
        "scorer": {"name": "policy_remote", "ref": SCORER_REF, "config": {"threshold": 0.8}},
    }
    assert request.headers["idempotency-key"] == "job-9:42"
    assert request.headers["x-weave-schema-version"] == "1"
    assert request.headers["x-correlation-id"] == context.scoring_call_id
    assert request.headers["content-type"] == "application/json"


def test_optional_fields_are_omitted_not_null(allow_loopback, fake_remote_scorer):
    """Fields without a value (no ref, no config, null call fields) are left out."""
    scorer = RemoteScorer(remote_val(fake_remote_scorer.score_url, config=None, name=None))
    context = scoring_context(call={"id": "c1", "inputs": {}, "output": "x", "exception": None, "parent_id": None})

    run(scorer, context)

    body = fake_remote_scorer.scored[0].json
    assert body["scorer"] == {"name": "RemoteScorer"}
    assert body["original_call"] == {
        "id": "c1",
        "call_id": "c1",
        "project_id": "alice/demo",
        "inputs": {},
        "output": "x",
    }


@pytest.mark.parametrize(
    "value",
    [
        {"value": 0.9, "reason": "clear", "confidence": 1.0},
        [{"value": 1.0}, {"value": "concise"}],
        {"scores": [{"value": "short"}]},
        0.5,
        "tag",
        None,
    ],
)
def test_reply_result_is_the_score(remote, fake_remote_scorer, value):
    """Whatever the endpoint returns under `result` is the score, unchanged."""
    fake_remote_scorer.script(result(value))

    assert run(remote).output == value


def test_idempotency_key_is_stable_across_retries(remote, fake_remote_scorer):
    """A retried task sends the same Idempotency-Key (each attempt has its own scoring call)."""
    fake_remote_scorer.script(error(503), result({"value": 1.0}))

    with pytest.raises(RetryableError):
        run(remote, scoring_context(task_key="job-1:7"))
    run(remote, scoring_context(task_key="job-1:7"))

    keys = [r.headers["idempotency-key"] for r in fake_remote_scorer.scored]
    ids = [r.json["scoring_call_id"] for r in fake_remote_scorer.scored]
    assert keys == ["job-1:7", "job-1:7"]
    assert ids[0] != ids[1]


@pytest.mark.parametrize(
    ("reply", "error_type", "retry_after"),
    [
        (error(429, "slow down", **{"Retry-After": "3"}), "RemoteScorerRateLimited", 3.0),
        (error(500), "RemoteScorerError", None),
        (error(502), "RemoteScorerError", None),
        (error(503, **{"Retry-After": "1"}), "RemoteScorerError", 1.0),
        (error(408), "RemoteScorerError", None),
        (hang(), "RemoteScorerTimeout", None),
    ],
)
def test_transient_failures_are_retryable(remote, fake_remote_scorer, reply, error_type, retry_after):
    """429, 408, 5xx and timeouts are retried later, honouring Retry-After."""
    fake_remote_scorer.script(reply)

    with pytest.raises(RetryableError) as excinfo:
        run(remote)

    assert excinfo.value.error_type == error_type
    assert excinfo.value.retry_after == retry_after


def test_unreachable_endpoint_is_retryable(allow_loopback, fake_remote_scorer):
    """Nothing listening on the port is a transient failure."""
    fake_remote_scorer.close()
    scorer = RemoteScorer(remote_val(fake_remote_scorer.score_url))

    with pytest.raises(RetryableError) as excinfo:
        run(scorer)

    assert excinfo.value.error_type == "RemoteScorerUnavailable"


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_fail_quoting_only_a_contract_error(remote, fake_remote_scorer, status):
    """Other 4xx answers fail the scoring at once: a contract error's message is quoted, any
    other body is not (it may be a page of an internal host)."""
    contract = {"schema_version": 1, "error": {"message": "unsupported_scoring_target_type"}}
    fake_remote_scorer.script(Reply(status, json=contract), error(status, "internal admin page"))

    with pytest.raises(ScorerFailed) as quoted:
        run(remote)
    with pytest.raises(ScorerFailed) as plain:
        run(remote)

    assert quoted.value.error_type == plain.value.error_type == "RemoteScorerRejected"
    assert str(status) in str(quoted.value) and "unsupported_scoring_target_type" in str(quoted.value)
    assert str(status) in str(plain.value) and "internal admin page" not in str(plain.value)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, body="<html>ok</html>"),
        Reply(200, json={"schema_version": 1, "score": 1}),
        Reply(200, json={"schema_version": 2, "result": 1}),
        Reply(200, json=[1, 2]),
        Reply(200, body='{"schema_version": 1, "result": NaN}'),
        Reply(201, json={"schema_version": 1, "result": 1}),
    ],
)
def test_malformed_answers_fail(remote, fake_remote_scorer, reply):
    """Anything but 200 with {"schema_version": 1, "result": ...} is never stored as a score."""
    fake_remote_scorer.script(reply)

    with pytest.raises(ScorerFailed) as excinfo:
        run(remote)

    assert excinfo.value.error_type in ("RemoteScorerBadResponse", "RemoteScorerRejected")


def test_oversized_answer_fails(remote, fake_remote_scorer):
    """An answer over 1 MiB is not read."""
    fake_remote_scorer.script(Reply(200, body="x" * (1024 * 1024 + 1)))

    with pytest.raises(ScorerFailed, match="larger than"):
        run(remote)


def test_redirects_are_not_followed(remote, fake_remote_scorer):
    """A redirect (here towards the metadata service) fails the scoring; it is not followed."""
    fake_remote_scorer.script(redirect("http://169.254.169.254/latest/meta-data/"))

    with pytest.raises(ScorerFailed) as excinfo:
        run(remote)

    assert excinfo.value.error_type == "RemoteScorerRedirected"
    assert len(fake_remote_scorer.requests) == 1


def test_bearer_token_is_sent_to_its_origin_and_never_shown(remote, fake_remote_scorer, settings):
    """The bearer token configured for the endpoint's origin is sent, and redacted if the endpoint
    echoes it in a contract error."""
    token = "remote-token-5f2b9c7e1d"
    settings.SCORING_OUTBOUND_CREDENTIALS = {fake_remote_scorer.url: {"bearer": token}}
    fake_remote_scorer.script(
        lambda request: Reply(
            401, json={"schema_version": 1, "error": {"message": f"bad token {request.headers['authorization']}"}}
        )
    )

    with pytest.raises(ScorerFailed) as excinfo:
        run(remote)

    assert fake_remote_scorer.scored[0].headers["authorization"] == f"Bearer {token}"
    assert token not in str(excinfo.value)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:{port}", "10.0.0.8", "169.254.169.254", "[::1]:{port}", "localhost:{port}", "[::ffff:127.0.0.1]"],
)
def test_internal_endpoints_are_refused(fake_remote_scorer, settings, host):
    """Without an allowlist, loopback, private and metadata endpoints are refused unsent."""
    settings.SCORING_OUTBOUND_ALLOWLIST = []
    url = f"http://{host.format(port=fake_remote_scorer.port)}/score"

    with pytest.raises(ScorerFailed) as excinfo:
        run(RemoteScorer(remote_val(url)))

    assert excinfo.value.error_type == "OutboundRefused"
    assert fake_remote_scorer.requests == []


def test_allowlist_lets_internal_deployments_through(fake_remote_scorer, settings):
    """With 127.0.0.1 allowlisted, the local endpoint is reached."""
    settings.SCORING_OUTBOUND_ALLOWLIST = ["127.0.0.1"]

    outcome = run(RemoteScorer(remote_val(fake_remote_scorer.score_url)))

    assert outcome.output == {"value": 0.01, "reason": "1 characters"}


@pytest.mark.parametrize("url", [None, "", "ftp://scorer.example.com/score", "https:///score", "http://h:99999/"])
def test_endpoint_url_must_be_http_with_a_host(url):
    """A RemoteScorer without a usable http(s) endpoint_url is refused when loaded."""
    with pytest.raises(ScorerConfigError, match="endpoint_url"):
        RemoteScorer(remote_val(url))


def test_config_must_be_an_object():
    """A RemoteScorer's config is passed through as an object, so it must be one."""
    with pytest.raises(ScorerConfigError, match="config"):
        RemoteScorer(remote_val("https://scorer.example.com/score", config=["x"]))


def test_remote_scorer_is_slow():
    """Remote scorers wait on the network, so the runner treats them as slow."""
    assert RemoteScorer.slow is True
