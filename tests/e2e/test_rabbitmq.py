"""RabbitMQ as the broker (BROKER_URL=amqp://...): a job submitted with `manage.py score` is scored
by a real worker through a real RabbitMQ. `.ci/run` starts RabbitMQ; elsewhere the test needs one
on 127.0.0.1:5672 and says so when there is none."""

import json
import os

import pytest
from django.conf import settings

from scoring.models import Feedback, ScoringTask
from scoring.scorers import blocks
from tests import factories
from tests.conftest import database_url, manage, score_and_wait, start_worker, stop_worker, wait_for
from tests.e2e.test_scorers_e2e import publish_judge
from tests.fakes import FAKE_OPENAI_KEY, FAST_HTTP_ENV
from tests.fakes.openai_server import FakeOpenAI
from tests.needs import unavailable

pytestmark = pytest.mark.slow

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture
def rabbitmq():
    """The real RabbitMQ, its scoring queues emptied."""
    import pika

    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPError as exc:
        unavailable(f"there is no RabbitMQ at {AMQP_URL} ({type(exc).__name__}); .ci/run starts one")
    channel = connection.channel()
    for queue in ("scoring", "scoring.DQ", "scoring.XQ"):
        try:
            channel.queue_purge(queue)
        except pika.exceptions.ChannelClosedByBroker:  # the queue does not exist yet
            channel = connection.channel()
    connection.close()
    return AMQP_URL


def test_jobs_are_scored_through_rabbitmq(user, transactional_db, rabbitmq):
    """With BROKER_URL=amqp://..., the submit side and a worker process meet through RabbitMQ and
    every pair is scored once."""
    for i in range(10):
        factories.call(call_id=f"c{i}", output="{}" if i % 2 else "prose")
    ref = factories.scorer()
    env = {"BROKER_URL": rabbitmq, "DATABASE_URL": database_url()}
    worker = start_worker(threads=4, extra_env=env)
    try:
        calls = [f"c{i}" for i in range(10)]
        result = score_and_wait("alice/demo", calls, [ref], env=env, timeout=120)
    finally:
        stop_worker(worker)
    assert result.returncode == 0, result.stderr
    assert "succeeded: 10 succeeded." in result.stdout
    assert ScoringTask.objects.filter(status="succeeded").count() == 10
    scores = sorted(f.payload["output"]["json_valid"] for f in Feedback.objects.all())
    assert scores == [False] * 5 + [True] * 5


def test_a_blocked_provider_is_shared_through_cache_url_with_rabbitmq(user, transactional_db, rabbitmq):
    """With RabbitMQ as the broker, the fleet's shared Redis is CACHE_URL's: a provider that
    refuses the key (401) is blocked there, where every process sees it, and the next judge task
    waits on the block without asking the provider again."""
    blocks.provider_unblock("openai")  # blocks outlive a test in Redis
    for i in range(2):
        factories.call(call_id=f"c{i}", output="4", inputs={"question": "2+2?"})
    ref = publish_judge()
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY) as provider:
        providers = {"openai": {"base_url": provider.base_url, "api_key": "sk-not-the-right-key"}}
        env = {
            "BROKER_URL": rabbitmq,
            "CACHE_URL": settings.SCORING_SHARED_REDIS_URL,  # the test's Redis
            "DATABASE_URL": database_url(),
            "SCORING_PROVIDERS": json.dumps(providers),
            **FAST_HTTP_ENV,
        }
        worker = start_worker(threads=1, extra_env=env)  # one thread: the two tasks one after the other
        try:
            submitted = manage("score", "--project", "alice/demo", "--calls", "c0", "c1", "--scorers", ref, env=env)
            assert submitted.returncode == 0, submitted.stderr
            wait_for(
                lambda: ScoringTask.objects.filter(error_type=blocks.ERROR_TYPE).count() == 2,
                timeout=90,
                message="both judge tasks waiting on the blocked provider",
            )
            block = blocks.provider_blocked("openai")  # read by this process, from the shared Redis
        finally:
            stop_worker(worker)
            blocks.provider_unblock("openai")

    assert len(provider.requests) == 1  # the second task did not ask
    assert block is not None and "401" in block["message"]
    tasks = ScoringTask.objects.all()
    assert {(task.status, task.attempts) for task in tasks} == {(ScoringTask.Status.WAITING, 0)}
    assert Feedback.objects.count() == 0


def test_check_warns_when_rabbitmq_has_no_shared_redis():
    """`manage.py check` says what is lost when nothing names a Redis beside RabbitMQ, and is quiet
    once CACHE_URL does."""
    without = manage("check", env={"BROKER_URL": AMQP_URL, "CACHE_URL": ""})
    with_redis = manage("check", env={"BROKER_URL": AMQP_URL, "CACHE_URL": settings.SCORING_SHARED_REDIS_URL})
    assert without.returncode == 0, without.stderr
    assert "scoring.W001" in without.stderr and "blocked providers" in without.stderr
    assert with_redis.returncode == 0 and "scoring.W001" not in with_redis.stderr
