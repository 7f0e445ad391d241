"""Weave's call queries: `/calls/stream_query` (JSON lines, streamed) and `/calls/query_stats`."""

import json

import pytest

from scoring.models import Feedback
from tests import factories
from tests.api.test_weave_v2_api import complete_body

STREAM = "/calls/stream_query"
STATS = "/calls/query_stats"


@pytest.fixture
def calls(api, user):
    """A trace (root with two children) and another root, logged through calls/complete."""
    batch = [
        complete_body("root", trace_id="t1", inputs={"q": "a"}, started_at="2026-01-01T00:00:00Z"),
        complete_body("child-1", trace_id="t1", parent_id="root", started_at="2026-01-01T00:00:01Z", output=1),
        complete_body("child-2", trace_id="t1", parent_id="root", started_at="2026-01-01T00:00:02Z", output=5),
        complete_body(
            "other", trace_id="t2", op_name="weave:///alice/demo/op/other:d1", started_at="2026-01-01T00:00:03Z"
        ),
    ]
    assert api.post("/v2/alice/demo/calls/complete", {"batch": batch}, format="json").status_code == 200


def stream(api, **body):
    response = api.post(STREAM, {"project_id": "alice/demo", **body}, format="json", HTTP_ACCEPT="application/jsonl")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/jsonl"
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def ids(rows):
    return [row["id"] for row in rows]


def test_streams_calls_as_json_lines_in_start_order(api, calls):
    """Every call comes back, one JSON object per line, oldest start first, in CallSchema's shape."""
    rows = stream(api)
    assert ids(rows) == ["root", "child-1", "child-2", "other"]
    assert rows[0]["project_id"] == "alice/demo"
    assert rows[0]["inputs"] == {"q": "a"}
    assert rows[0]["started_at"] == "2026-01-01T00:00:00Z"
    assert rows[1]["parent_id"] == "root" and rows[1]["output"] == 1


def test_filter_by_ids_parents_traces_and_roots(api, calls):
    """CallsFilter's lists and `trace_roots_only` pick calls."""
    assert ids(stream(api, filter={"call_ids": ["other", "root"]})) == ["root", "other"]
    assert ids(stream(api, filter={"parent_ids": ["root"]})) == ["child-1", "child-2"]
    assert ids(stream(api, filter={"trace_ids": ["t2"]})) == ["other"]
    assert ids(stream(api, filter={"trace_roots_only": True})) == ["root", "other"]


def test_op_name_filter_with_any_version(api, calls):
    """An op name ending in `:*` matches every version of the op."""
    assert ids(stream(api, filter={"op_names": ["weave:///alice/demo/op/other:*"]})) == ["other"]


def test_query_sort_and_page(api, calls):
    """`query` ($expr), `sort_by` a JSON path, `offset` and `limit` all apply in the database."""
    assert ids(stream(api, query={"$expr": {"$eq": [{"$getField": "parent_id"}, {"$literal": "root"}]}})) == [
        "child-1",
        "child-2",
    ]
    rows = stream(api, sort_by=[{"field": "started_at", "direction": "desc"}], offset=1, limit=2)
    assert ids(rows) == ["child-2", "child-1"]


def test_include_feedback_puts_feedback_in_the_summary(api, calls):
    """With `include_feedback`, each call's feedback is in `summary.weave.feedback`."""
    Feedback.objects.create(
        project=factories.project(),
        weave_ref="weave:///alice/demo/call/root",
        feedback_type="wandb.reaction.1",
        payload={"emoji": "x"},
        wb_user_id="u",
    )
    rows = {row["id"]: row for row in stream(api, include_feedback=True)}
    assert [f["payload"] for f in rows["root"]["summary"]["weave"]["feedback"]] == [{"emoji": "x"}]
    assert rows["root"]["summary"]["status_counts"] == {"success": 1, "error": 0}
    assert rows["other"]["summary"]["weave"]["feedback"] == []


def test_bad_query_is_422_before_any_line(api, calls):
    """A query the server cannot translate is a located 422, not a broken stream."""
    body = {"project_id": "alice/demo", "query": {"$expr": {"$regex": []}}}
    response = api.post(STREAM, body, format="json", HTTP_ACCEPT="application/jsonl")
    assert response.status_code == 422
    assert json.loads(response.content)["detail"][0]["loc"] == ["body", "query", "$expr", "$regex"]


def test_query_stats_counts(api, calls):
    """`/calls/query_stats` counts matching calls, at most `limit`."""
    assert api.post(STATS, {"project_id": "alice/demo"}, format="json").json() == {"count": 4}
    body = {"project_id": "alice/demo", "filter": {"parent_ids": ["root"]}}
    assert api.post(STATS, body, format="json").json() == {"count": 2}
    assert api.post(STATS, {"project_id": "alice/demo", "limit": 3}, format="json").json() == {"count": 3}


def test_project_nobody_wrote_to_has_no_calls(api, user):
    """An empty project streams nothing and counts 0."""
    assert stream(api) == []
    assert api.post(STATS, {"project_id": "alice/demo"}, format="json").json() == {"count": 0}


def test_project_of_another_user_is_403(client_for, make_user, calls):
    """Queries follow the project rule."""
    bob = client_for(make_user("bob"))
    assert bob.post(STREAM, {"project_id": "alice/demo"}, format="json").status_code == 403
    assert bob.post(STATS, {"project_id": "alice/demo"}, format="json").status_code == 403
