"""RabbitMQ as the broker (BROKER_URL=amqp://...): a job submitted with `manage.py score` is scored
by a real worker through a real RabbitMQ. `.ci/run` starts RabbitMQ; elsewhere the test needs one
on 127.0.0.1:5672 and says so when there is none."""

import os

import pytest

from scoring.models import Feedback, ScoringTask
from tests import factories
from tests.conftest import database_url, score_and_wait, start_worker, stop_worker
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
