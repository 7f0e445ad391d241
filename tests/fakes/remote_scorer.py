"""A fake remote scorer endpoint speaking Weave's remote scorer contract (schema_version 1):
`POST /score` with the call, answered `{"schema_version": 1, "result": ...}`; the result comes from
`score_fn(request_body)` unless replies are scripted. Every request is recorded."""

from collections.abc import Callable
from typing import Any

from tests.fakes.server import Recorded, Reply, ScriptedServer


def output_length(body: dict) -> dict:
    """The default scoring: a rating from the length of the call's output."""
    output = str(body.get("original_call", {}).get("output", ""))
    return {"value": min(len(output) / 100, 1.0), "reason": f"{len(output)} characters"}


def result(value: Any, *, schema_version: int = 1, latency: float = 0.0) -> Reply:
    return Reply(200, json={"schema_version": schema_version, "result": value}, latency=latency)


def error(status: int = 503, text: str = "try again later", **headers: str) -> Reply:
    return Reply(status, body=text, headers=headers)


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, body="", headers={"Location": location})


def hang() -> Reply:
    return Reply(hang=True)


class FakeRemoteScorer(ScriptedServer):
    """A remote scorer at `score_url` (on 127.0.0.1 unless told another local address)."""

    def __init__(self, score_fn: Callable[[dict], Any] = output_length, host: str = "127.0.0.1"):
        super().__init__(host)
        self.score_fn = score_fn

    @property
    def score_url(self) -> str:
        return f"{self.url}/score"

    @property
    def scored(self) -> list[Recorded]:
        """The scoring requests received, in order."""
        return [r for r in self.requests if r.path == "/score"]

    def route(self, request: Recorded) -> Reply:
        if request.path != "/score" or request.method != "POST":
            return super().default(request)
        return super().route(request)

    def default(self, request: Recorded) -> Reply:
        return result(self.score_fn(request.json or {}))
