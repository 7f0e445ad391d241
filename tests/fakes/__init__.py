"""Real local HTTP servers for tests (an OpenAI-compatible provider, a remote scorer endpoint),
the fixtures that start them (load with `pytest_plugins = ["tests.fakes.fixtures"]`), and
helpers to use them from a worker subprocess through its environment."""

import uuid

from scoring.scorers.base import ScoringContext

FAKE_OPENAI_KEY = "sk-fake-0123456789abcdefghijklmnopqrstuv"
# SCORING_OUTBOUND_ALLOWLIST for a worker process that must reach the fake remote scorer.
LOOPBACK_ALLOWLIST_ENV = {"SCORING_OUTBOUND_ALLOWLIST": "127.0.0.1"}
# Short timeouts for tests: a hanging fake fails a request in well under a second.
FAST_HTTP_SETTINGS = {
    "SCORING_HTTP_TIMEOUT": 0.5,
    "SCORING_HTTP_CONNECT_TIMEOUT": 0.5,
    "SCORING_REMOTE_SCORER_TIMEOUT": 0.5,
    "SCORING_PROVIDER_SLOT_WAIT": 2.0,
}
FAST_HTTP_ENV = {name: str(value) for name, value in FAST_HTTP_SETTINGS.items()}


def scoring_context(call: dict | None = None, **overrides) -> ScoringContext:
    """A ScoringContext as the task runner builds it, for calling `scorer.run` directly."""
    call = call or {
        "id": "call-1",
        "project_id": "alice/demo",
        "op_name": "weave:///alice/demo/op/answer:abc",
        "trace_id": "trace-1",
        "started_at": "2026-01-01T00:00:00Z",
        "ended_at": "2026-01-01T00:00:01Z",
        "inputs": {"question": "What is 2 + 2?"},
        "output": "4",
    }
    values = {
        "project_id": call.get("project_id", "alice/demo"),
        "call_id": call["id"],
        "scoring_call_id": str(uuid.uuid4()),
        "task_key": "job-1:1",
        "call": call,
        **overrides,
    }
    return ScoringContext(**values)
