"""LLM providers for judges: OpenAI-compatible chat completions on endpoints configured on the
server (never by users), with a timeout on every request, failures classified as retryable or
not, API keys kept out of every message, and a per-provider concurrency limit shared by all
worker processes.

Configuration (django settings, read at call time): SCORING_PROVIDERS maps a provider name to
{"base_url", "api_key" or "api_key_env", "concurrency"}; the provider of a judge is the part of
its `llm_model_id` before the first "/" ("openai/gpt-4o-mini" -> "openai", model "gpt-4o-mini";
a bare model name is OpenAI's, as litellm reads it). SCORING_HTTP_TIMEOUT and
SCORING_HTTP_CONNECT_TIMEOUT bound each request. SCORING_PROVIDER_CONCURRENCY,
SCORING_PROVIDER_SLOT_WAIT and SCORING_PROVIDER_SLOT_TTL shape the shared limit.

The shared limit is Dramatiq's ConcurrentRateLimiter on the fleet's shared Redis (CACHE_URL, by
default the broker's). With RabbitMQ as the broker and no CACHE_URL there is no Redis to share, so
the limit is not applied (each worker thread may then hold one request per provider); name a Redis
in CACHE_URL where providers need protecting.
"""

import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from dramatiq.rate_limits import ConcurrentRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from scoring import metrics
from scoring.scorers import blocks, netguard
from scoring.scorers.base import RetryableError, ScorerFailed, read_timeout

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 16 * 1024 * 1024
ERROR_TEXT_LIMIT = 500
SLOT_KEY_PREFIX = "scoring:provider-slots:"
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
# Answers that every further request would get too, until someone fixes a key or pays a bill.
BLOCKING_STATUSES = frozenset({401, 402, 403})
BILLING_MARKERS = ("insufficient_quota", "billing", "exceeded your current quota")


@dataclass(frozen=True)
class Provider:
    """One configured OpenAI-compatible endpoint."""

    name: str
    base_url: str
    api_key: str = field(repr=False)
    concurrency: int


@dataclass(frozen=True)
class Completion:
    """The first choice of a chat completion and the tokens it cost."""

    content: str | None
    usage: dict[str, int]
    finish_reason: str | None = None


def split_model_id(llm_model_id: str) -> tuple[str, str]:
    """("openai", "gpt-4o-mini") for "openai/gpt-4o-mini"; later slashes belong to the model."""
    provider, sep, model = llm_model_id.partition("/")
    return (provider, model) if sep else ("openai", llm_model_id)


def _configured() -> dict[str, dict]:
    return getattr(settings, "SCORING_PROVIDERS", None) or {}


def _api_key(config: dict) -> str:
    if config.get("api_key_env"):
        return os.environ.get(str(config["api_key_env"]), "")
    return str(config.get("api_key") or "")


def _secrets() -> list[str]:
    """Every configured key, so that none of them can leak through any provider's answer."""
    return [_api_key(c) for c in _configured().values() if isinstance(c, dict)]


def redact(text: str) -> str:
    return netguard.redact(text, _secrets())


def provider_get(name: str) -> Provider:
    """The configured provider of this name; ScorerFailed (naming the configured ones) if none."""
    providers = _configured()
    config = providers.get(name)
    if not isinstance(config, dict) or not config.get("base_url"):
        configured = ", ".join(sorted(providers)) or "none (set SCORING_PROVIDERS or OPENAI_API_KEY)"
        raise ScorerFailed(
            f"LLM provider {name!r} is not configured on this server; configured providers: {configured}",
            error_type="UnknownProvider",
        )
    return Provider(
        name=name,
        base_url=str(config["base_url"]).rstrip("/"),
        api_key=_api_key(config),
        concurrency=max(1, int(config.get("concurrency") or settings.SCORING_PROVIDER_CONCURRENCY)),
    )


_backend_lock = threading.Lock()
_backends: dict[str, RedisBackend] = {}


def _limiter(provider: Provider) -> ConcurrentRateLimiter | None:
    url = settings.SCORING_SHARED_REDIS_URL  # none: no limit across processes, only their threads
    if not url:
        return None
    with _backend_lock:
        backend = _backends.get(url)
        if backend is None:
            backend = _backends[url] = RedisBackend(url=url)
    return ConcurrentRateLimiter(
        backend,
        SLOT_KEY_PREFIX + provider.name,
        limit=provider.concurrency,
        # A slot held by a worker that was killed mid-request frees itself this long after the
        # last acquire or release of the provider's counter.
        ttl=int(settings.SCORING_PROVIDER_SLOT_TTL * 1000),
    )


@contextmanager
def provider_slot(provider: Provider) -> Iterator[None]:
    """Hold one of the provider's concurrent slots while the body runs (always released).

    Waits, polling, up to SCORING_PROVIDER_SLOT_WAIT seconds; then RetryableError, so that the
    task waits in the queue rather than in a worker thread.
    """
    limiter = _limiter(provider)
    if limiter is None:
        yield
        return
    deadline = time.monotonic() + float(settings.SCORING_PROVIDER_SLOT_WAIT)
    while True:
        try:
            with limiter.acquire(raise_on_failure=False) as acquired:
                if acquired:
                    yield
                    return
        except redis.RedisError as exc:
            raise RetryableError(
                f"The concurrency limiter for provider {provider.name!r} is unavailable: {exc}",
                error_type="ProviderLimiterUnavailable",
            ) from None
        if time.monotonic() >= deadline:
            raise RetryableError(
                f"All {provider.concurrency} concurrent slots of provider {provider.name!r} stayed busy for "
                f"{settings.SCORING_PROVIDER_SLOT_WAIT:g}s",
                error_type="ProviderBusy",
            )
        time.sleep(random.uniform(0.01, 0.05))


def _error_text(raw: bytes) -> str:
    """The provider's own error message from an error body, else the start of the body."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        message = message or body.get("message") or body.get("detail")
    if not message:
        message = raw.decode("utf-8", "replace").strip() or "(empty body)"
    if not isinstance(message, str):
        message = json.dumps(message)
    return message[:ERROR_TEXT_LIMIT]


def _parse_completion(raw: bytes, where: str) -> Completion:
    try:
        body = json.loads(raw)
        if isinstance(body, dict) and body.get("error") and not body.get("choices"):
            # Some gateways report an upstream failure inside a 200.
            raise RetryableError(f"{where} reported an error: {_error_text(raw)}", error_type="ProviderError")
        choice = body["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            content = json.dumps(content)
        if content is None and message.get("refusal"):
            content = str(message["refusal"])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise ScorerFailed(
            f"{where}'s answer is not a chat completion: {raw[:ERROR_TEXT_LIMIT].decode('utf-8', 'replace')}",
            error_type="ProviderBadResponse",
        ) from None
    usage_in = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    usage = {k: int(usage_in.get(k) or 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    if not usage["total_tokens"]:
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return Completion(content=content, usage=usage, finish_reason=choice.get("finish_reason"))


def chat_completion(*, llm_model_id: str, messages: list[dict], params: dict | None = None) -> Completion:
    """Ask the provider of `llm_model_id` for one chat completion.

    Raises RetryableError for 408/409/425/429, 5xx, timeouts and connection errors (with
    Retry-After when given), ScorerFailed for other answers that will not get better; no message
    contains a configured API key.
    """
    provider_name, model = split_model_id(llm_model_id)
    provider = provider_get(provider_name)
    headers = {"Accept": "application/json"}
    if provider.api_key:
        headers["Authorization"] = f"Bearer {provider.api_key}"
    body = {**(params or {}), "model": model, "messages": messages}
    where = f"Provider {provider.name!r}"
    blocks.raise_if_blocked(provider.name)
    try:
        with provider_slot(provider):
            return _post(provider, model, body, headers, where)
    except (RetryableError, ScorerFailed) as exc:
        exc.args = (redact(str(exc)),)
        metrics.provider_error(provider.name, exc.error_type)
        if isinstance(exc, RetryableError):
            logger.warning("%s (%s): %s", where, exc.error_type, exc)
        raise


def _post(provider: Provider, model: str, body: dict, headers: dict, where: str) -> Completion:
    client = netguard.shared_client("trusted")
    with (
        netguard.transport_errors(where, "Provider"),
        client.stream(
            "POST",
            f"{provider.base_url}/chat/completions",
            json=body,
            headers=headers,
            timeout=netguard.timeout(read_timeout(settings.SCORING_HTTP_TIMEOUT, "LLMAsAJudgeScorer")),
        ) as response,
    ):
        raw = netguard.read_capped(response, MAX_ANSWER_BYTES)

    status = response.status_code
    metrics.provider_request(provider.name, status)
    if status in BLOCKING_STATUSES or (
        status == 429 and any(m in raw.decode("utf-8", "replace") for m in BILLING_MARKERS)
    ):
        message = redact(f"{where} answered {status} {response.reason_phrase}: {_error_text(raw)}")
        raise blocks.blocked_error(blocks.provider_block(provider.name, message))
    if status in RETRYABLE_STATUSES or status >= 500:
        kind = "ProviderRateLimited" if status == 429 else "ProviderError"
        raise RetryableError(
            f"{where} answered {status} {response.reason_phrase}: {_error_text(raw)}",
            error_type=kind,
            retry_after=netguard.retry_after_seconds(response.headers.get("Retry-After")),
        )
    if status >= 300:
        reason = "redirects are not followed" if status < 400 else _error_text(raw)
        raise ScorerFailed(
            f"{where} rejected the request for model {model!r} ({status} {response.reason_phrase}): {reason}",
            error_type="ProviderRejected",
        )
    return _parse_completion(raw, where)
