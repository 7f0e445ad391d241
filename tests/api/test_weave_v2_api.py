"""The weave client's v2 call routes: `/v2/<entity>/<project>/calls/complete` (its default batch
route), `/call/start` and `/call/end`, with the bodies weave 0.54 sends (captured)."""

import pytest

from scoring.models import Call, Project
from scoring.weave.ids import wb_user_id_for
from tests.api.test_calls_api import end_body, start_body

URL = "/v2/alice/demo/calls/complete"


def complete_body(call_id="c1", **over):
    """A finished call as the weave client sends it to calls/complete (captured)."""
    return {
        "project_id": "alice/demo",
        "id": call_id,
        "trace_id": "t-" + call_id,
        "op_name": "weave:///alice/demo/op/answer:uUIV6oW81xzKAQCFgcI81YemxMBDEj3bfTXcZYomXYU",
        "started_at": "2026-11-26T17:18:20.882955Z",
        "ended_at": "2026-11-26T17:18:20.883659Z",
        "display_name": None,
        "parent_id": None,
        "thread_id": None,
        "turn_id": None,
        "attributes": {"weave": {"python": {"type": "function"}, "client_version": "0.54.0"}},
        "inputs": {"question": "what is 2+2?"},
        "output": '{"answer": "WHAT IS 2+2?"}',
        "summary": {"status_counts": {"success": 1, "error": 0}},
        "otel_dump": None,
        "exception": None,
        "wb_user_id": None,
        "wb_run_id": None,
        "wb_run_step": None,
        "wb_run_step_end": None,
        **over,
    }


def post(api, url, body):
    return api.post(url, body, format="json")


def test_complete_stores_each_call_whole(api, user):
    """Each item of a calls/complete batch is stored with its start and end halves, wb_user_id
    set by the server whatever the client sent."""
    response = post(
        api, URL, {"batch": [complete_body("c1"), complete_body("c2", wb_user_id="forged", output={"x": 1})]}
    )
    assert response.status_code == 200, response.content
    assert response.json() == {}
    c1 = Call.objects.get(call_id="c1")
    assert (c1.op_name, c1.trace_id, c1.inputs, c1.output) == (
        complete_body()["op_name"],
        "t-c1",
        {"question": "what is 2+2?"},
        '{"answer": "WHAT IS 2+2?"}',
    )
    assert c1.started_at is not None and c1.ended_at is not None
    assert c1.summary == {"status_counts": {"success": 1, "error": 0}}
    assert Call.objects.get(call_id="c2").output == {"x": 1}
    assert set(Call.objects.values_list("wb_user_id", flat=True)) == {wb_user_id_for(user)}


def test_child_before_parent_is_accepted(api, user):
    """A child call may arrive before its parent's start, in another request."""
    child = complete_body("child", parent_id="parent", trace_id="t-parent")
    assert post(api, URL, {"batch": [child]}).status_code == 200
    response = post(api, "/v2/alice/demo/call/start", {"start": start_body("parent")})
    assert response.status_code == 200
    assert response.json() == {"id": "parent", "trace_id": "t-parent"}
    assert Call.objects.get(call_id="child").parent_id == "parent"


def test_complete_after_an_eager_start_fills_the_call(api, user):
    """A call started eagerly then sent again complete ends up whole, one row."""
    assert post(api, "/v2/alice/demo/call/start", {"start": start_body("c1")}).status_code == 200
    assert post(api, URL, {"batch": [complete_body("c1")]}).status_code == 200
    assert Call.objects.count() == 1
    assert Call.objects.get().ended_at is not None


def test_v2_end_before_start(api, user):
    """`/v2/.../call/end` may come before `/v2/.../call/start`; the call ends up whole."""
    assert post(api, "/v2/alice/demo/call/end", {"end": end_body("c1")}).status_code == 200
    assert post(api, "/v2/alice/demo/call/start", {"start": start_body("c1")}).status_code == 200
    call = Call.objects.get(call_id="c1")
    assert (call.op_name, call.output) == (start_body()["op_name"], '{"answer": "NESTED?"}')


def test_sending_a_batch_twice_changes_nothing(api, user):
    """A retried batch (the client retries on a timeout) leaves the same rows."""
    body = {"batch": [complete_body("c1"), complete_body("c2")]}
    assert post(api, URL, body).status_code == 200
    assert post(api, URL, body).status_code == 200
    assert Call.objects.count() == 2


def test_item_of_another_project_than_the_path_is_422(api, user):
    """Every item's project_id must be the path's project."""
    response = post(api, URL, {"batch": [complete_body("c1"), complete_body("c2", project_id="alice/other")]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "batch", 1, "project_id"]
    assert not Call.objects.exists()


@pytest.mark.parametrize(
    ("over", "loc", "type_"),
    [
        ({"started_at": "yesterday"}, ["body", "batch", 1, "started_at"], "datetime_from_date_parsing"),
        ({"ended_at": None}, ["body", "batch", 1, "ended_at"], "datetime_type"),
        ({"trace_id": None}, ["body", "batch", 1, "trace_id"], "string_type"),
        ({"inputs": [1]}, ["body", "batch", 1, "inputs"], "dict_type"),
        ({"output": "a\x00b"}, ["body", "batch", 1, "output"], "string_unstorable"),
        ({"id": "x" * 500}, ["body", "batch", 1, "id"], "string_too_long"),
    ],
)
def test_bad_item_is_a_located_422(api, user, over, loc, type_):
    """A bad field of an item is a 422 naming it; nothing of the batch is stored."""
    response = post(api, URL, {"batch": [complete_body("ok"), complete_body("c1", **over)]})
    assert response.status_code == 422, response.content
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [(loc, type_)]
    assert not Call.objects.exists()


def test_missing_fields_are_each_reported(api, user):
    """An item missing its required fields gets one error per field."""
    response = post(api, URL, {"batch": [{"project_id": "alice/demo"}]})
    assert response.status_code == 422
    missing = {e["loc"][-1] for e in response.json()["detail"] if e["type"] == "missing"}
    assert missing == {"id", "trace_id", "op_name", "started_at", "ended_at", "attributes", "inputs", "summary"}


def test_project_of_another_user_is_403(client_for, make_user):
    """The project rule applies: bob may not write alice's calls."""
    bob = client_for(make_user("bob"))
    assert post(bob, URL, {"batch": [complete_body("c1")]}).status_code == 403
    assert not Project.objects.exists()


def test_unauthenticated_is_401(client, db):
    """Without credentials the route is a 401."""
    response = client.post(URL, {"batch": []}, content_type="application/json")
    assert response.status_code == 401
