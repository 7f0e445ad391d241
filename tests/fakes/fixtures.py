"""Fixtures that start the fake servers and point this process's settings at them. Load them in
a test module with `pytest_plugins = ["tests.fakes.fixtures"]`.

- fake_openai: a FakeOpenAI that requires the key FAKE_OPENAI_KEY; stopped after the test.
- openai_provider: fake_openai configured as the "openai" provider, with short timeouts, so an
  LLM judge whose llm_model_id is "openai/<model>" reaches it. Returns the FakeOpenAI.
- fake_remote_scorer: a FakeRemoteScorer; its `score_url` is a RemoteScorer's endpoint_url.
- allow_loopback: SCORING_OUTBOUND_ALLOWLIST = ["127.0.0.1"] (and short timeouts), so remote
  scorers may reach the fakes.

A worker subprocess reads its settings from the environment instead: pass
`fake_openai.provider_env()` (SCORING_PROVIDERS), LOOPBACK_ALLOWLIST_ENV and FAST_HTTP_ENV
(all in tests.fakes).
"""

import pytest

from scoring.scorers import blocks
from tests.fakes import FAKE_OPENAI_KEY, FAST_HTTP_SETTINGS
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.remote_scorer import FakeRemoteScorer


def _fast(settings) -> None:
    for name, value in FAST_HTTP_SETTINGS.items():
        setattr(settings, name, value)


@pytest.fixture
def fake_openai():
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY) as server:
        yield server
    blocks.provider_unblock("openai")  # a test that made it answer 401 blocked it


@pytest.fixture
def openai_provider(settings, fake_openai):
    settings.SCORING_PROVIDERS = {"openai": fake_openai.provider_config()}
    _fast(settings)
    return fake_openai


@pytest.fixture
def fake_remote_scorer():
    with FakeRemoteScorer() as server:
        yield server


@pytest.fixture
def allow_loopback(settings):
    settings.SCORING_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    _fast(settings)
