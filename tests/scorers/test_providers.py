"""OpenAI-compatible providers: configuration, retry classification, key redaction and the
per-provider concurrency limit shared through Redis, against a real local fake server."""

import logging
import threading
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone
from django.utils.http import http_date

from project.settings import _scoring_providers
from scoring.scorers import blocks, providers
from scoring.scorers.base import RetryableError, ScorerFailed
from tests.fakes import FAKE_OPENAI_KEY
from tests.fakes.openai_server import FakeOpenAI, answer, bad_request, hang, rate_limited, server_error

pytest_plugins = ["tests.fakes.fixtures"]

MESSAGES = [{"role": "user", "content": "Is 2 + 2 = 4? Answer in JSON."}]


def ask(model_id: str = "openai/gpt-4o-mini", **params):
    return providers.chat_completion(llm_model_id=model_id, messages=MESSAGES, params=params)


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("openai/gpt-4o-mini", ("openai", "gpt-4o-mini")),
        ("local/meta-llama/Llama-3.1-8B", ("local", "meta-llama/Llama-3.1-8B")),
        ("gpt-4o", ("openai", "gpt-4o")),
    ],
)
def test_model_id_names_provider_then_model(model_id, expected):
    """The provider is the part of llm_model_id before the first slash; a bare name is OpenAI's."""
    assert providers.split_model_id(model_id) == expected


def test_completion_is_sent_with_key_model_and_params(openai_provider):
    """The request goes to <base_url>/chat/completions with the key, the model and the params."""
    openai_provider.script(answer('{"ok": true}', usage={"prompt_tokens": 7, "completion_tokens": 3}))

    completion = ask(temperature=0.0, max_tokens=20)

    sent = openai_provider.completions[0]
    assert sent.headers["authorization"] == f"Bearer {FAKE_OPENAI_KEY}"
    assert sent.json == {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0.0, "max_tokens": 20}
    assert completion.content == '{"ok": true}'
    assert completion.usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def test_unknown_provider_names_configured_ones(openai_provider, settings):
    """A model of an unconfigured provider fails, naming the providers that are configured."""
    settings.SCORING_PROVIDERS = {**settings.SCORING_PROVIDERS, "local": {"base_url": "http://127.0.0.1:1/v1"}}

    with pytest.raises(ScorerFailed) as excinfo:
        ask("anthropic/claude-3-5-sonnet")

    assert excinfo.value.error_type == "UnknownProvider"
    assert "'anthropic'" in str(excinfo.value) and "local, openai" in str(excinfo.value)
    assert openai_provider.requests == []


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("2", 2.0), ("0.25", 0.25), (None, None), ("soon", None)],
)
def test_429_is_retryable_with_retry_after_seconds(openai_provider, retry_after, expected):
    """429 is a RetryableError carrying the Retry-After delay when the provider gives one."""
    openai_provider.script(rate_limited(retry_after=retry_after))

    with pytest.raises(RetryableError) as excinfo:
        ask()

    assert excinfo.value.error_type == "ProviderRateLimited"
    assert excinfo.value.retry_after == expected
    assert "429" in str(excinfo.value) and "Rate limit reached" in str(excinfo.value)


def test_429_retry_after_http_date(openai_provider):
    """A Retry-After given as an HTTP date becomes the seconds until then."""
    when = timezone.now() + timedelta(seconds=30)
    openai_provider.script(rate_limited(retry_after=http_date(when.timestamp())))

    with pytest.raises(RetryableError) as excinfo:
        ask()

    # The seconds left until the date: some, never more than it was ahead when sent.
    assert 0 < excinfo.value.retry_after <= 30


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_retryable(openai_provider, status):
    """5xx (and 408) answers are transient: RetryableError with the provider's message."""
    openai_provider.script(server_error(status, message="upstream overloaded"))

    with pytest.raises(RetryableError) as excinfo:
        ask()

    assert excinfo.value.error_type == "ProviderError"
    assert str(status) in str(excinfo.value) and "upstream overloaded" in str(excinfo.value)


def test_hanging_provider_times_out_as_retryable(openai_provider):
    """A provider that never answers is cut off by the read timeout and retried later."""
    openai_provider.script(hang())

    with pytest.raises(RetryableError) as excinfo:
        ask()

    assert excinfo.value.error_type == "ProviderTimeout"


def test_unreachable_provider_is_retryable(settings):
    """A connection refused (nothing listening) is a RetryableError."""
    with FakeOpenAI() as server:
        base_url = server.base_url
    settings.SCORING_PROVIDERS = {"openai": {"base_url": base_url, "api_key": "k"}}

    with pytest.raises(RetryableError) as excinfo:
        ask()

    assert excinfo.value.error_type == "ProviderUnavailable"


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_4xx_fail_with_provider_message(openai_provider, status):
    """A 4xx other than 429 fails at once, with the provider's own error message."""
    openai_provider.script(bad_request("Invalid value for 'temperature': must be <= 2.", status=status))

    with pytest.raises(ScorerFailed) as excinfo:
        ask(temperature=9)

    assert excinfo.value.error_type == "ProviderRejected"
    assert "Invalid value for 'temperature': must be <= 2." in str(excinfo.value)
    assert str(status) in str(excinfo.value)


def test_echoed_key_is_redacted_everywhere(fake_openai, settings, caplog):
    """A provider that echoes a wrong key back (a 401, which blocks it): the key is in no error,
    no log line and not in the block's message."""
    wrong_key = "sk-wrong-" + uuid.uuid4().hex
    settings.SCORING_PROVIDERS = {"openai": {"base_url": fake_openai.base_url, "api_key": wrong_key}}
    caplog.set_level(logging.DEBUG)

    with pytest.raises(RetryableError) as excinfo:
        ask()

    assert (excinfo.value.error_type, excinfo.value.counts) == ("ProviderBlocked", False)
    assert wrong_key not in blocks.provider_blocked("openai")["message"]

    assert fake_openai.requests[0].headers["authorization"] == f"Bearer {wrong_key}"
    assert "Incorrect API key provided" in str(excinfo.value)
    assert wrong_key not in str(excinfo.value) and wrong_key not in repr(excinfo.value.args)
    assert wrong_key not in caplog.text


def test_key_echoed_in_a_retryable_error_is_redacted(openai_provider, caplog):
    """Retryable errors (which are also logged) are redacted the same way."""
    openai_provider.script(server_error(503, message=f"bad gateway for key {FAKE_OPENAI_KEY}"))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(RetryableError) as excinfo:
        ask()

    assert "[REDACTED]" in str(excinfo.value)
    assert FAKE_OPENAI_KEY not in str(excinfo.value)
    assert FAKE_OPENAI_KEY not in caplog.text


def test_provider_repr_hides_key(openai_provider):
    """A Provider's repr (as in a traceback's locals) does not show its key."""
    assert FAKE_OPENAI_KEY not in repr(providers.provider_get("openai"))


def test_api_key_env_and_openai_shorthand(monkeypatch):
    """OPENAI_API_KEY/OPENAI_BASE_URL configure the "openai" provider, reading the key at call time."""
    monkeypatch.delenv("SCORING_PROVIDERS", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")

    config = _scoring_providers()

    assert config == {"openai": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "OPENAI_API_KEY"}}
    assert "sk-from-env" not in repr(config)


def test_provider_config_from_env_json(monkeypatch, settings):
    """SCORING_PROVIDERS is JSON from the environment; its concurrency overrides the default."""
    monkeypatch.setenv("SCORING_PROVIDERS", '{"local": {"base_url": "http://127.0.0.1:9/v1", "concurrency": 3}}')
    settings.SCORING_PROVIDERS = _scoring_providers()

    provider = providers.provider_get("local")

    assert (provider.base_url, provider.api_key, provider.concurrency) == ("http://127.0.0.1:9/v1", "", 3)


def wait_for_requests(server, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.requests) < count:
        assert time.monotonic() < deadline, f"the fake received {len(server.requests)} requests, not {count}"
        time.sleep(0.01)


def slot_count(name: str) -> int:
    client = redis.Redis.from_url(django_settings.SCORING_SHARED_REDIS_URL)
    return int(client.get(providers.SLOT_KEY_PREFIX + name) or 0)


def configure(settings, server, name: str, concurrency: int) -> str:
    settings.SCORING_PROVIDERS = {name: server.provider_config(concurrency=concurrency)}
    return f"{name}/gpt-4o-mini"


def test_concurrency_limit_is_shared(settings, fake_openai):
    """With a limit of 2, six threads asking at once never have more than 2 requests in flight."""
    model_id = configure(settings, fake_openai, f"limited-{uuid.uuid4().hex[:8]}", 2)
    settings.SCORING_PROVIDER_SLOT_WAIT = 10
    fake_openai.latency = 0.2
    results, errors = [], []

    def worker():
        try:
            results.append(ask(model_id))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert errors == [] and len(results) == 6
    assert fake_openai.max_in_flight == 2
    assert slot_count(model_id.split("/")[0]) == 0


def test_busy_provider_makes_the_task_wait(settings, fake_openai):
    """When every slot stays busy past the wait bound, the scoring is retried later."""
    model_id = configure(settings, fake_openai, f"busy-{uuid.uuid4().hex[:8]}", 1)
    settings.SCORING_PROVIDER_SLOT_WAIT = 0.2
    fake_openai.script(answer("slow", latency=0.6))
    holder = threading.Thread(target=ask, args=(model_id,))
    holder.start()
    wait_for_requests(fake_openai, 1)

    with pytest.raises(RetryableError) as excinfo:
        ask(model_id)

    holder.join()
    assert excinfo.value.error_type == "ProviderBusy"
    assert len(fake_openai.requests) == 1


def test_slot_is_released_after_a_failure(settings, fake_openai):
    """A failed request gives its slot back."""
    model_id = configure(settings, fake_openai, f"released-{uuid.uuid4().hex[:8]}", 1)
    fake_openai.script(server_error(500), bad_request())

    for expected in (RetryableError, ScorerFailed):
        with pytest.raises(expected):
            ask(model_id)

    assert slot_count(model_id.split("/")[0]) == 0
    assert ask(model_id).content is not None


def test_no_shared_limit_without_redis(settings, openai_provider):
    """With no shared Redis (RabbitMQ as the broker, no CACHE_URL) there is no shared limiter, and
    requests still go through."""
    settings.BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"
    settings.SCORING_SHARED_REDIS_URL = ""

    assert providers._limiter(providers.provider_get("openai")) is None
    assert ask().content is not None
