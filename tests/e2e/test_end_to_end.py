"""End to end through the real pieces: HTTP to a live server, PostgreSQL, Redis, and a
`manage.py rundramatiq` worker process scoring the pairs."""

import uuid

import httpx
import pytest

from scoring.engine.actors import dispatch_job
from scoring.models import TASK_UNFINISHED, Feedback, ScoringJob, ScoringTask
from tests import factories
from tests.conftest import basic, wait_for

pytestmark = pytest.mark.slow

PROJECT = "alice/demo"


@pytest.fixture
def http(live_server, user, api_key):
    with httpx.Client(base_url=live_server.url, headers={"Authorization": basic(api_key)}, timeout=30) as client:
        yield client


def ingest_calls(http, outputs: dict[str, object]) -> None:
    """Log calls through the Weave batch endpoint, ends before starts to show order does not matter."""
    batch = []
    for call_id, output in outputs.items():
        batch.append(
            {
                "mode": "end",
                "req": {
                    "end": {
                        "project_id": PROJECT,
                        "id": call_id,
                        "ended_at": "2026-01-01T00:00:01Z",
                        "output": output,
                        "summary": {},
                    }
                },
            }
        )
        batch.append(
            {
                "mode": "start",
                "req": {
                    "start": {
                        "project_id": PROJECT,
                        "id": call_id,
                        "trace_id": call_id,
                        "op_name": "weave:///alice/demo/op/answer:abc",
                        "started_at": "2026-01-01T00:00:00Z",
                        "attributes": {},
                        "inputs": {"question": call_id},
                    }
                },
            }
        )
    response = http.post("/call/upsert_batch", json={"batch": batch})
    assert response.status_code == 200, response.text


def publish_scorer(http, class_name: str) -> str:
    val = factories.scorer_val(class_name)
    response = http.post("/obj/create", json={"obj": {"project_id": PROJECT, "object_id": class_name, "val": val}})
    assert response.status_code == 200, response.text
    return f"weave:///{PROJECT}/object/{class_name}:{response.json()['digest']}"


def feedback_of(http, call_id: str) -> list[dict]:
    query = {"$expr": {"$eq": [{"$getField": "weave_ref"}, {"$literal": f"weave:///{PROJECT}/call/{call_id}"}]}}
    response = http.post(
        "/feedback/query",
        json={"project_id": PROJECT, "query": query, "sort_by": [{"field": "created_at", "direction": "asc"}]},
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]


def job_done(job_id):
    def check():
        return not ScoringTask.objects.filter(job_id=job_id, status__in=TASK_UNFINISHED).exists()

    return check


def test_calls_are_scored_by_a_real_worker(http, worker):
    """Calls logged and scorers published over HTTP are scored by the worker, and the scores read
    back through /feedback/query; the failure of one pair is explained on its task."""
    outputs = {"ok": '{"answer": 4}', "prose": "four", "xml": "<answer>4</answer>", "dict": {"answer": 4}}
    ingest_calls(http, outputs)
    json_ref = publish_scorer(http, "ValidJSONScorer")
    xml_ref = publish_scorer(http, "ValidXMLScorer")

    response = http.post(
        "/calls/score", json={"project_id": PROJECT, "call_ids": list(outputs), "scorer_refs": [json_ref, xml_ref]}
    )
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    wait_for(job_done(job_id), timeout=60, message="the job's tasks to finish")

    scores = {
        call_id: {f["feedback_type"]: f["payload"]["output"] for f in feedback_of(http, call_id)} for call_id in outputs
    }
    assert scores["ok"] == {
        "wandb.runnable.ValidJSONScorer": {"json_valid": True},
        "wandb.runnable.ValidXMLScorer": {"xml_valid": False},
    }
    assert scores["prose"] == {
        "wandb.runnable.ValidJSONScorer": {"json_valid": False},
        "wandb.runnable.ValidXMLScorer": {"xml_valid": False},
    }
    assert scores["xml"] == {
        "wandb.runnable.ValidJSONScorer": {"json_valid": False},
        "wandb.runnable.ValidXMLScorer": {"xml_valid": True},
    }
    # json.loads of a dict raises, as in Weave: the pair fails with the reason, and is not a score.
    assert scores["dict"] == {"wandb.runnable.ValidXMLScorer": {"xml_valid": False}}
    failed = ScoringTask.objects.get(job_id=job_id, status=ScoringTask.Status.FAILED)
    assert (failed.call.call_id, failed.error_type) == ("dict", "TypeError")
    job = ScoringJob.objects.get(pk=job_id)
    wait_for(lambda: ScoringJob.objects.filter(pk=job_id, finished_at__isnull=False).exists(), message="finished_at")
    assert job.tasks.filter(status=ScoringTask.Status.SUCCEEDED).count() == 7


def test_job_message_sent_twice_scores_each_pair_once(http, worker):
    """Delivering a job's dispatch message again (as a broker may) adds no second feedback."""
    outputs = {f"c{i}": "{}" for i in range(20)}
    ingest_calls(http, outputs)
    ref = publish_scorer(http, "ValidJSONScorer")
    response = http.post("/calls/score", json={"project_id": PROJECT, "call_ids": list(outputs), "scorer_refs": [ref]})
    job_id = response.json()["job_id"]
    dispatch_job.send(job_id)
    dispatch_job.send(job_id)
    wait_for(job_done(job_id), message="the job's tasks to finish")
    # Give the duplicate messages time to be consumed too, then count.
    wait_for(lambda: worker_queue_empty(), message="the queue to drain")
    assert Feedback.objects.filter(task__job_id=job_id).count() == 20
    assert set(ScoringTask.objects.filter(job_id=job_id).values_list("attempts", flat=True)) == {1}


def worker_queue_empty() -> bool:
    import dramatiq

    broker = dramatiq.get_broker()
    client = broker.client
    return client.llen(f"{broker.namespace}:scoring") == 0 and client.hlen(f"{broker.namespace}:scoring.msgs") == 0


def test_unknown_route_is_json_404(http):
    """An unknown route is a JSON 404."""
    response = http.post(f"/no/such/{uuid.uuid4()}", json={})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_health_reports_database_and_broker(live_server):
    """/health answers 200, without credentials, when PostgreSQL and Redis are reachable."""
    response = httpx.get(live_server.url + "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_call_ending_after_the_request_is_scored_when_it_ends(http, broker, transactional_db):
    """Scoring a call that is still running waits for it; once it ends, the worker scores it."""
    from tests.conftest import start_worker, stop_worker

    start = {
        "project_id": PROJECT,
        "id": "slow",
        "trace_id": "slow",
        "op_name": "op",
        "started_at": "2026-01-01T00:00:00Z",
        "attributes": {},
        "inputs": {},
    }
    assert http.post("/call/start", json={"start": start}).status_code == 200
    ref = publish_scorer(http, "ValidJSONScorer")
    job_id = http.post("/calls/score", json={"project_id": PROJECT, "call_ids": ["slow"], "scorer_refs": [ref]}).json()[
        "job_id"
    ]
    worker = start_worker(extra_env={"SCORING_CALL_WAIT_POLL": "0.3"})
    try:
        wait_for(
            lambda: ScoringTask.objects.filter(job_id=job_id, status="waiting").exists(), message="the task to wait"
        )
        end = {
            "project_id": PROJECT,
            "id": "slow",
            "ended_at": "2026-01-01T00:00:05Z",
            "output": "[1, 2]",
            "summary": {},
        }
        assert http.post("/call/end", json={"end": end}).status_code == 200
        wait_for(job_done(job_id), message="the task to be scored after the call ended")
    finally:
        stop_worker(worker)
    assert [f["payload"] for f in feedback_of(http, "slow")] == [{"output": {"json_valid": True}}]
