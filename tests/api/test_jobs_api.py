"""The job API: progress and derived status, the task list, cancel and retry."""

import uuid

import pytest

from scoring.engine.reconcile import broker_view
from scoring.engine.run import task_run
from scoring.models import Feedback, ScoringTask
from scoring.selectors.jobs import JobProgress
from tests import factories

Status = ScoringTask.Status


@pytest.fixture
def job_id(api):
    factories.call(call_id="good", output="{}")
    factories.call(call_id="bad", output={"not": "a string"})  # ValidJSONScorer raises on a dict
    factories.call(call_id="later", output="[]")
    ref = factories.scorer()
    body = {"project_id": "alice/demo", "call_ids": ["good", "bad", "later"], "scorer_refs": [ref]}
    response = api.post("/calls/score", body, format="json")
    assert response.status_code == 200
    return response.json()["job_id"]


def tasks_by_call(job_id) -> dict[str, ScoringTask]:
    return {t.call.call_id: t for t in ScoringTask.objects.filter(job_id=job_id).select_related("call")}


def counts(**nonzero):
    return {**dict.fromkeys(Status.values, 0), **nonzero}


@pytest.mark.parametrize(
    ("nonzero", "status"),
    [
        ({"queued": 3}, "queued"),
        ({"queued": 2, "running": 1}, "running"),
        ({"queued": 2, "succeeded": 1}, "running"),
        ({"waiting": 1, "succeeded": 2}, "running"),
        ({"succeeded": 3}, "succeeded"),
        ({"failed": 3}, "failed"),
        ({"failed": 1, "succeeded": 2}, "partial"),
        ({"cancelled": 2, "succeeded": 1}, "cancelled"),
        ({}, "succeeded"),
    ],
)
def test_job_status_is_derived_from_task_counts(nonzero, status):
    """The job status follows from its tasks' states."""
    assert JobProgress(counts(**nonzero)).status == status


def test_job_detail_shows_status_counts_and_request(api, job_id):
    """GET a job: its status, counts per state, timings and the request as received."""
    for task in tasks_by_call(job_id).values():
        if task.call.call_id != "later":
            task_run(task_id=task.pk)
    response = api.get(f"/calls/score/jobs/{job_id}")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "running"
    assert data["counts"] == {**counts(succeeded=1, failed=1, pending=1), "total": 3}
    assert data["request"]["call_ids"] == ["good", "bad", "later"]
    assert data["requested_by"] == "alice"
    assert data["finished_at"] is None


def test_task_list_filters_by_status_and_explains_failures(api, job_id):
    """The task list names each pair, and a failed one carries its error."""
    for task in tasks_by_call(job_id).values():
        task_run(task_id=task.pk)
    response = api.get(f"/calls/score/jobs/{job_id}/tasks?status=failed")
    assert response.status_code == 200
    (row,) = response.json()["tasks"]
    assert row["call_id"] == "bad"
    assert row["error_type"] == "TypeError"
    assert row["feedback_id"] is None
    assert row["scorer_ref"].startswith("weave:///alice/demo/object/ValidJSONScorer:")
    succeeded = api.get(f"/calls/score/jobs/{job_id}/tasks?status=succeeded").json()["tasks"]
    assert {r["feedback_id"] for r in succeeded} == {str(f.id) for f in Feedback.objects.all()}


def test_task_list_pages_by_keyset(api, job_id):
    """Pages follow each other by `after`, without overlap or gap."""
    first = api.get(f"/calls/score/jobs/{job_id}/tasks?limit=2").json()
    assert len(first["tasks"]) == 2
    second = api.get(f"/calls/score/jobs/{job_id}/tasks?limit=2&after={first['next_after']}").json()
    assert len(second["tasks"]) == 1
    assert second["next_after"] is None
    ids = [t["id"] for t in first["tasks"] + second["tasks"]]
    assert ids == sorted(set(ids))


def test_bad_query_parameters_are_422(api, job_id):
    """An unknown status or a bad limit is a 422 located in the query."""
    response = api.get(f"/calls/score/jobs/{job_id}/tasks?status=bogus&limit=0")
    assert response.status_code == 422
    assert {tuple(d["loc"]) for d in response.json()["detail"]} == {("query", "status"), ("query", "limit")}


def test_cancel_stops_queued_and_waiting_tasks(api, job_id):
    """Cancel turns queued and waiting tasks into cancelled; finished ones keep their result."""
    tasks = tasks_by_call(job_id)
    task_run(task_id=tasks["good"].pk)
    ScoringTask.objects.filter(pk=tasks["bad"].pk).update(status=Status.WAITING)
    response = api.post(f"/calls/score/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["cancelled"] == 2
    assert response.json()["status"] == "cancelled"
    assert task_run(task_id=tasks["later"].pk) is None  # a cancelled task is never claimed
    assert response.json()["finished_at"] is not None


def test_retry_runs_failed_tasks_again_keeping_history(api, job_id):
    """Retry queues failed tasks again; their attempt count goes on and the last error stays
    until the new attempt ends."""
    tasks = tasks_by_call(job_id)
    for task in tasks.values():
        task_run(task_id=task.pk)
    response = api.post(f"/calls/score/jobs/{job_id}/retry")
    assert response.status_code == 200
    assert response.json()["retried"] == 1
    assert response.json()["status"] == "running"
    bad = ScoringTask.objects.get(pk=tasks["bad"].pk)
    assert (bad.status, bad.attempts, bad.error_type) == (Status.PENDING, 1, "TypeError")
    assert task_run(task_id=bad.pk).status == Status.FAILED
    bad.refresh_from_db()
    assert bad.attempts == 2


def test_other_users_cannot_see_or_touch_a_job(make_user, client_for, job_id):
    """A job of a project the user may not access is a 404 for every job route."""
    bob = client_for(make_user("bob"))
    assert bob.get(f"/calls/score/jobs/{job_id}").status_code == 404
    assert bob.get(f"/calls/score/jobs/{job_id}/tasks").status_code == 404
    assert bob.post(f"/calls/score/jobs/{job_id}/cancel").status_code == 404
    assert bob.post(f"/calls/score/jobs/{job_id}/retry").status_code == 404
    assert ScoringTask.objects.filter(job_id=job_id, status=Status.PENDING).count() == 3


def test_unknown_job_is_404(api, db):
    """A job id that does not exist is a JSON 404."""
    response = api.get(f"/calls/score/jobs/{uuid.uuid4()}")
    assert response.status_code == 404
    assert "detail" in response.json()


def test_retry_sends_its_dispatch_message_after_commit(transactional_db, broker, api, job_id):
    """Retrying failed tasks commits them pending (for the dispatch window), then hands the job to
    the broker: after POST .../retry the broker holds the job's dispatch message (on-commit hooks
    fire here)."""
    for task in tasks_by_call(job_id).values():
        task_run(task_id=task.pk)
    broker.flush_all()
    assert broker_view().job_ids == frozenset()

    response = api.post(f"/calls/score/jobs/{job_id}/retry")

    assert response.status_code == 200
    assert tasks_by_call(job_id)["bad"].status == Status.PENDING
    assert broker_view().job_ids == frozenset({job_id})
    assert response.json()["retried"] == 1
