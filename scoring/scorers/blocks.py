"""Blocked providers: a provider that refused our credentials or our billing (401, 403, 402, a quota
error) is blocked for SCORING_PROVIDER_BLOCK_SECONDS in the fleet's shared Redis (CACHE_URL, by
default the broker's), shared by every worker, keeping the first failure's message; its tasks wait
for the block to lift instead of failing."""

import json
import threading
import time

import redis
from django.conf import settings

from scoring.scorers.base import RetryableError

KEY_PREFIX = "scoring:provider-block:"
ERROR_TYPE = "ProviderBlocked"  # scoring.engine.states.PROVIDER_BLOCKED

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _client() -> redis.Redis | None:
    # Without a shared Redis (RabbitMQ as the broker and no CACHE_URL) nothing is blocked.
    url = settings.SCORING_SHARED_REDIS_URL
    if not url:
        return None
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url)
        return _clients[url]


def provider_block(name: str, message: str) -> dict:
    """Block the provider unless it is already blocked (then the first block and message stay)."""
    now = time.time()
    seconds = settings.SCORING_PROVIDER_BLOCK_SECONDS
    info = {"provider": name, "message": message, "since": now, "until": now + seconds}
    client = _client()
    if client is None:
        return info
    client.set(KEY_PREFIX + name, json.dumps(info), nx=True, ex=max(1, int(seconds)))
    return provider_blocked(name) or info


def provider_blocked(name: str) -> dict | None:
    """The provider's block ({provider, message, since, until}), or None when it is not blocked."""
    client = _client()
    raw = client.get(KEY_PREFIX + name) if client is not None else None
    return json.loads(raw) if raw else None


def provider_unblock(name: str) -> bool:
    client = _client()
    return bool(client.delete(KEY_PREFIX + name)) if client is not None else False


def providers_blocked() -> list[dict]:
    client = _client()
    if client is None:
        return []
    found = []
    for key in client.scan_iter(match=KEY_PREFIX + "*", count=100):
        raw = client.get(key)
        if raw:
            found.append(json.loads(raw))
    return sorted(found, key=lambda info: info["provider"])


def blocked_error(info: dict) -> RetryableError:
    """The wait of a task whose provider is blocked: no attempt, retried when the block lifts."""
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info["until"]))
    return RetryableError(
        f"Provider {info['provider']!r} is blocked until {until} (or until an operator clears it) after: "
        f"{info['message']}",
        error_type=ERROR_TYPE,
        retry_after=max(0.5, info["until"] - time.time()),
        counts=False,
    )


def raise_if_blocked(name: str) -> None:
    try:
        info = provider_blocked(name)
    except redis.RedisError:
        return  # the block is an economy, not a rule: the request decides
    if info is not None:
        raise blocked_error(info)
