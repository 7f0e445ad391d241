"""Fixtures for the attacks: a live server, a tenant's HTTP client, and helpers to log a call and
publish an object the way the weave client does."""

import httpx
import pytest

from tests.conftest import basic, stop_worker
from tests.conftest import start_worker as _start_worker
from tests.fakes import FAST_HTTP_ENV

PROJECT = "alice/demo"
SCORER_BASES = ["Scorer", "Object", "BaseModel"]


@pytest.fixture
def http(live_server, user, api_key):
    """alice's client against the live server."""
    with httpx.Client(base_url=live_server.url, headers={"Authorization": basic(api_key)}, timeout=30) as client:
        yield client


@pytest.fixture
def anonymous(live_server):
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def run_worker(transactional_db, broker):
    """Start a real worker process with extra environment; stopped after the test."""
    started = []

    def start(**env):
        started.append(_start_worker(threads=2, extra_env={**FAST_HTTP_ENV, "SCORING_MAX_ATTEMPTS": "1", **env}))

    yield start
    for process in started:
        stop_worker(process)


def log_call(http, call_id: str = "c1", output="4", inputs=None, project: str = PROJECT) -> None:
    start = {
        "project_id": project,
        "id": call_id,
        "trace_id": call_id,
        "op_name": f"weave:///{project}/op/answer:abc",
        "started_at": "2026-01-01T00:00:00Z",
        "attributes": {},
        "inputs": inputs or {"question": "2+2?"},
    }
    end = {"project_id": project, "id": call_id, "ended_at": "2026-01-01T00:00:01Z", "output": output, "summary": {}}
    assert http.post("/call/start", json={"start": start}).status_code == 200
    assert http.post("/call/end", json={"end": end}).status_code == 200


def publish(http, object_id: str, val: dict, project: str = PROJECT) -> str:
    """Publish an object through /obj/create and return its ref."""
    response = http.post("/obj/create", json={"obj": {"project_id": project, "object_id": object_id, "val": val}})
    assert response.status_code == 200, response.text
    return f"weave:///{project}/object/{object_id}:{response.json()['digest']}"


def scorer_val(class_name: str, **fields) -> dict:
    return {"_type": class_name, "_class_name": class_name, "_bases": SCORER_BASES, "name": None, **fields}


def finished_tasks(http, job_id: str) -> list[dict] | None:
    """The job's tasks once none is left to run, else None."""
    tasks = http.get(f"/calls/score/jobs/{job_id}/tasks").json()["tasks"]
    return tasks if tasks and all(t["status"] in ("succeeded", "failed", "cancelled") for t in tasks) else None
