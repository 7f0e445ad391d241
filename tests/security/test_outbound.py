"""Secrets leave only to where they belong: credentials are bound to their origin, allowlist
entries may name a port, and remote replies are never echoed raw into what a tenant reads."""

import json

import pytest

from tests.conftest import wait_for
from tests.fakes.remote_scorer import FakeRemoteScorer, error
from tests.security.conftest import PROJECT, finished_tasks, log_call, publish, scorer_val

pytestmark = pytest.mark.slow

OPERATOR_TOKEN = "operator-token-7c1e9a44b2"


def submit(http, refs: list[str]) -> str:
    response = http.post("/calls/score", json={"project_id": PROJECT, "call_ids": ["c1"], "scorer_refs": refs})
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


def test_operator_credential_reaches_only_its_origin(http, run_worker):
    """A tenant's remote scorer pointing at a server of its own receives no credential, while
    the endpoint the operator configured the token for does; the tenant's endpoint's reply body
    (an internal page) is not copied into the task error the tenant reads back."""
    with FakeRemoteScorer() as trusted, FakeRemoteScorer() as hostile:
        hostile.script(error(404, "<h1>internal admin page: db password hunter2</h1>"))
        run_worker(
            SCORING_OUTBOUND_ALLOWLIST=f"127.0.0.1:{trusted.port},127.0.0.1:{hostile.port}",
            SCORING_OUTBOUND_CREDENTIALS=json.dumps({trusted.url: {"bearer": OPERATOR_TOKEN}}),
        )
        log_call(http)
        good = publish(http, "trusted", scorer_val("RemoteScorer", endpoint_url=trusted.score_url))
        evil = publish(http, "collector", scorer_val("RemoteScorer", endpoint_url=hostile.score_url))

        job_id = submit(http, [good, evil])
        tasks = wait_for(lambda: finished_tasks(http, job_id), message="the job to finish")

    assert trusted.scored[0].headers.get("authorization") == f"Bearer {OPERATOR_TOKEN}"
    assert "authorization" not in {k.lower() for k in hostile.scored[0].headers}
    failed = next(t for t in tasks if t["scorer_ref"] == evil)
    assert failed["status"] == "failed" and failed["error_type"] == "RemoteScorerRejected"
    assert "404" in failed["error_message"] and f"127.0.0.1:{hostile.port}" in failed["error_message"]
    assert "hunter2" not in failed["error_message"] and "admin page" not in failed["error_message"]


def test_allowlist_entry_with_a_port_keeps_other_ports_closed(http, run_worker):
    """With `127.0.0.1:<port>` allowlisted, a remote scorer on another port of the same host is
    refused without a request."""
    with FakeRemoteScorer() as allowed, FakeRemoteScorer() as other:
        run_worker(SCORING_OUTBOUND_ALLOWLIST=f"127.0.0.1:{allowed.port}")
        log_call(http)
        open_ref = publish(http, "allowed", scorer_val("RemoteScorer", endpoint_url=allowed.score_url))
        closed_ref = publish(http, "other-port", scorer_val("RemoteScorer", endpoint_url=other.score_url))

        job_id = submit(http, [open_ref, closed_ref])
        tasks = wait_for(lambda: finished_tasks(http, job_id), message="the job to finish")

    by_ref = {t["scorer_ref"]: t for t in tasks}
    assert by_ref[open_ref]["status"] == "succeeded"
    assert by_ref[closed_ref]["status"] == "failed" and by_ref[closed_ref]["error_type"] == "OutboundRefused"
    assert len(allowed.scored) == 1 and other.scored == []
