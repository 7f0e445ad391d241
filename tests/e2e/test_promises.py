"""Promises of the README checked through real processes: /health answers 503 when the broker is
down, and a provider key comes from its `api_key_env` variable and never reaches a worker's log."""

import json
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from scoring.models import Feedback, ScoringTask
from tests import factories
from tests.conftest import database_url, wait_for
from tests.e2e import hosts
from tests.e2e.test_scorers_e2e import finished, publish_judge, submit
from tests.fakes import FAKE_OPENAI_KEY, FAST_HTTP_ENV
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow

HEALTH_PORT = 8853


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("broker_up", [True, False])
def test_health_answers_503_naming_the_broker_when_it_is_down(transactional_db, tmp_path, broker_up):
    """A gunicorn server whose broker answers says 200; one whose broker does not (nothing listens
    at its address) says 503, naming the broker and not the database."""
    broker_url = settings.BROKER_URL if broker_up else "redis://127.0.0.1:1/0"
    env = hosts.service_env(database_url(), broker_url)
    server = hosts.popen(hosts.web_cmd("127.0.0.1", HEALTH_PORT), env, tmp_path / "web.log")
    try:
        hosts.wait_port("127.0.0.1", HEALTH_PORT, what="the web server")
        status, body = get(f"http://127.0.0.1:{HEALTH_PORT}/health")
    finally:
        hosts.kill_group(server)
    assert body["database"] == "ok"
    if broker_up:
        assert (status, body["status"], body["broker"]) == (200, "ok", "ok")
    else:
        assert (status, body["status"]) == (503, "unavailable")
        assert body["broker"] != "ok"


def test_provider_key_comes_from_api_key_env_and_is_not_logged(user, transactional_db, broker, tmp_path):
    """A provider configured with `api_key_env` sends the key found in that variable of the worker
    (here a wrong one, which the provider rejects and echoes back); the pair fails saying so, and
    the key appears neither in the task's error nor anywhere in the worker's output."""
    wrong_key = "sk-from-env-0123456789abcdefghijklmnopqrstu"
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY) as provider:
        factories.call(call_id="c1", output="4", inputs={"question": "2+2?"})
        job = submit(user, ["c1"], [publish_judge()])
        providers = {"openai": {"base_url": provider.base_url, "api_key_env": "SCORING_TEST_JUDGE_KEY"}}
        env = hosts.service_env(
            database_url(), settings.BROKER_URL, SCORING_PROVIDERS=json.dumps(providers),
            SCORING_TEST_JUDGE_KEY=wrong_key, **FAST_HTTP_ENV,
        )  # fmt: skip
        log = tmp_path / "worker.log"
        worker = hosts.popen(hosts.worker_cmd(), env, log)
        try:
            wait_for(finished(job), timeout=60, message="the judge task")
        finally:
            hosts.kill_group(worker)

    assert [r.headers["authorization"] for r in provider.requests] == [f"Bearer {wrong_key}"]
    task = ScoringTask.objects.get(job=job)
    assert task.status == ScoringTask.Status.FAILED
    assert "401" in task.error_message and wrong_key not in task.error_message
    assert Feedback.objects.count() == 0
    output = log.read_text()
    assert "Worker process is ready" in output  # the log is the worker's
    assert wrong_key not in output
