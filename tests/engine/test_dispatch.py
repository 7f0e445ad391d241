"""Fanning a job out: one message per queued task, sent in pipelined batches (real Redis)."""

from queue import PriorityQueue
from types import SimpleNamespace

import pytest
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.common import current_millis
from dramatiq.middleware import Middleware
from dramatiq.worker import _WorkQueueItem

from scoring.engine.actors import dispatch_job, ping, score_task
from scoring.engine.broker import enqueue_many, fetched_args
from scoring.engine.dispatch import job_enqueue_tasks
from scoring.engine.reconcile import broker_view
from scoring.services.jobs import job_submit
from tests import factories


@pytest.fixture
def job(user):
    ids = [factories.call(call_id=f"c{i}").call_id for i in range(5)]
    ref = factories.scorer()
    request = {"project_id": "alice/demo", "call_ids": ids, "scorer_refs": [ref]}
    return job_submit(user=user, project_id="alice/demo", call_ids=ids, scorer_refs=[ref], request=request).job


def test_enqueue_many_sends_one_message_each_across_batches(broker):
    """Every item becomes one message, also when the pipeline is flushed several times."""
    assert enqueue_many(score_task, [((i,), {}) for i in range(1, 8)], batch=3) == 7
    assert broker_view(broker).task_ids == set(range(1, 8))
    assert broker.client.llen(f"{broker.namespace}:scoring") == 7


def test_a_delayed_message_waits_in_the_delay_queue(broker):
    """A message sent with a delay is held in the broker's delay queue until its eta, as
    RedisBroker.enqueue does: it is not handed to a worker at once."""
    before = current_millis()
    assert enqueue_many(score_task, [((7,), {"delay": 30_000, "time_limit": 1_000})]) == 1
    assert broker.client.llen(f"{broker.namespace}:scoring") == 0
    [message_id] = broker.client.lrange(f"{broker.namespace}:scoring.DQ", 0, -1)
    message = Message.decode(broker.client.hget(f"{broker.namespace}:scoring.DQ.msgs", message_id))
    assert message.args == (7,)
    assert message.options["eta"] >= before + 30_000
    assert message.options["time_limit"] == 1_000
    assert "delay" not in message.options
    assert broker_view(broker).task_ids == {7}


def test_middleware_enqueue_hooks_run_for_each_message(broker):
    """Middleware that implements the enqueue hooks sees every message, before and after, with
    its delay, as with RedisBroker.enqueue."""

    class Recorder(Middleware):
        def __init__(self):
            self.seen = []

        def before_enqueue(self, broker, message, delay):
            self.seen.append(("before", message.args, delay))

        def after_enqueue(self, broker, message, delay):
            self.seen.append(("after", message.args, delay))

    recorder = Recorder()
    broker.add_middleware(recorder)
    try:
        enqueue_many(score_task, [((1,), {}), ((2,), {"delay": 5_000})], batch=1)
    finally:
        broker.middleware.remove(recorder)
    assert recorder.seen == [
        ("before", (1,), None),
        ("after", (1,), None),
        ("before", (2,), 5_000),
        ("after", (2,), 5_000),
    ]


def test_job_fan_out_sends_its_queued_tasks(job, broker):
    """A job's fan-out sends a message for each queued task and none for the others."""
    first, *rest = job.tasks.order_by("pk").values_list("pk", flat=True)
    job.tasks.filter(pk=first).update(status="cancelled")
    assert job_enqueue_tasks(job_id=job.pk) == 4
    assert broker_view(broker).task_ids == set(rest)


def test_fetched_args_reads_the_worker_queue_oldest_first(broker):
    """The task ids of score_task messages a worker has fetched but not started, in the order its
    threads will take them; other actors' messages are not tasks."""
    work_queue = PriorityQueue()
    messages = (score_task.message(5), ping.message(), score_task.message(3), dispatch_job.message("job"))
    for message in (*messages, score_task.message_with_options(args=())):  # and one without its argument
        work_queue.put(_WorkQueueItem(0, MessageProxy(message)))
    assert fetched_args(SimpleNamespace(work_queue=work_queue), score_task) == [5, 3]
    assert work_queue.qsize() == 5  # only looked at
