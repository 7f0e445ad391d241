"""A fake OpenAI-compatible provider: `POST /v1/chat/completions` answered from a script
(answers, latency, 429 with Retry-After, 5xx, hangs, 4xx with an OpenAI error body), recording
every request so tests can check the prompt and parameters that were sent.

    with FakeOpenAI(api_key="sk-test") as fake:
        fake.script(answer('{"correct": true}'), rate_limited(retry_after="2"))
        ...  # point the "openai" provider at fake.base_url
        fake.completions[0].json["messages"]
"""

import itertools
import json
from typing import Any

from tests.fakes.server import Recorded, Reply, ScriptedServer

DEFAULT_ANSWER = '{"correct": true, "reason": "fake judge"}'


def _error(status: int, message: str, kind: str, code: str | None = None, **headers: str) -> Reply:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Reply(status, json=body, headers=headers)


def answer(content: str | None, *, usage: dict | None = None, latency: float = 0.0, finish_reason: str = "stop"):
    """A chat completion whose first choice says `content` (usage defaults to word counts)."""

    def reply(request: Recorded) -> Reply:
        body = request.json or {}
        prompt_words = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
        completion_words = len((content or "").split())
        return Reply(
            200,
            latency=latency,
            json={
                "id": f"chatcmpl-fake-{next(_ids)}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": usage
                or {
                    "prompt_tokens": prompt_words,
                    "completion_tokens": completion_words,
                    "total_tokens": prompt_words + completion_words,
                },
            },
        )

    return reply


_ids = itertools.count(1)


def rate_limited(retry_after: str | None = "1", message: str = "Rate limit reached for requests") -> Reply:
    """429 as OpenAI sends it, with a Retry-After header (seconds or an HTTP date) unless None."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return _error(429, message, "requests", "rate_limit_exceeded", **headers)


def server_error(status: int = 500, message: str = "The server had an error while processing your request.") -> Reply:
    return _error(status, message, "server_error")


def bad_request(message: str = "Invalid value for 'temperature'.", status: int = 400) -> Reply:
    """A 4xx with an OpenAI error body; its message is what the task's error should show."""
    return _error(status, message, "invalid_request_error", "invalid_request")


def hang() -> Reply:
    """Accept the request and never answer, so the client's read timeout fires."""
    return Reply(hang=True)


class FakeOpenAI(ScriptedServer):
    """An OpenAI-compatible endpoint on 127.0.0.1. Unscripted requests get `default_answer`.
    With `api_key`, a request with another key gets 401 echoing the key it sent, as OpenAI does."""

    def __init__(self, *, api_key: str | None = None, default_answer: str = DEFAULT_ANSWER, latency: float = 0.0):
        super().__init__()
        self.api_key = api_key
        self.default_answer = default_answer
        self.latency = latency

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def completions(self) -> list[Recorded]:
        """The chat completion requests received, in order."""
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def route(self, request: Recorded) -> Reply:
        if self.api_key is not None:
            sent = request.headers.get("authorization", "").removeprefix("Bearer ")
            if sent != self.api_key:
                return _error(401, f"Incorrect API key provided: {sent}.", "invalid_request_error", "invalid_api_key")
        if request.path != "/v1/chat/completions":
            return super().default(request)
        return super().route(request)

    def default(self, request: Recorded) -> Reply:
        return answer(self.default_answer, latency=self.latency)(request)

    def provider_config(self, **extra: Any) -> dict:
        """The SCORING_PROVIDERS entry that points a provider at this server."""
        return {"base_url": self.base_url, **({"api_key": self.api_key} if self.api_key else {}), **extra}

    def provider_env(self, name: str = "openai", **extra: Any) -> dict[str, str]:
        """Environment variables that point provider `name` at this server in a worker process."""
        return {"SCORING_PROVIDERS": json.dumps({name: self.provider_config(**extra)})}
