"""`POST /feedback/create`, `/feedback/batch/create` and `/feedback/query` in Weave's shapes: what
the weave client sends, server-set wb_user_id, client ids kept, the query language over the
project's own rows, the 422 error shape, and the project access rule."""

import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from scoring.models import Feedback
from scoring.weave.ids import wb_user_id_for

CALL_REF = "weave:///alice/demo/call/01a218dd-86cf-7ae9-8c0d-ded9d599e922"
SCORER_REF = "weave:///alice/demo/object/ValidJSONScorer:wIQxdaDKcunWifrg0DR2Mu92AdgZ93PLaXltGDiXPdU"
ROW_KEYS = {
    "id",
    "project_id",
    "weave_ref",
    "feedback_type",
    "payload",
    "creator",
    "runnable_ref",
    "call_ref",
    "trigger_ref",
    "annotation_ref",
    "wb_user_id",
    "created_at",
}


def create(client, **over):
    body = {
        "project_id": "alice/demo",
        "weave_ref": CALL_REF,
        "feedback_type": "wandb.runnable.ValidJSONScorer",
        "payload": {"output": {"json_valid": True}},
        **over,
    }
    return client.post("/feedback/create", body, format="json")


def query(client, **body):
    return client.post("/feedback/query", {"project_id": "alice/demo", **body}, format="json")


def locs(response) -> list[list]:
    return [e["loc"] for e in response.json()["detail"]]


def weave_batch_item(feedback_id: str, payload: dict, feedback_type: str = "wandb.reaction.1") -> dict:
    """One item of /feedback/batch/create exactly as weave 0.54 sends it (see the traffic capture)."""
    return {
        "project_id": "alice/demo",
        "weave_ref": CALL_REF,
        "feedback_type": feedback_type,
        "payload": payload,
        "scorer_tags": [],
        "scorer_tag_reasons": {},
        "scorer_tag_confidences": {},
        "scorer_ratings": {},
        "scorer_rating_reasons": {},
        "scorer_rating_confidences": {},
        "span_agent_name": "",
        "span_agent_version": "",
        "span_status_code": "UNSET",
        "span_conversation_id": "",
        "span_trace_id": "",
        "scorer_trace_id": "",
        "id": feedback_id,
    }


@pytest.fixture
def bob(make_user):
    return make_user("bob")


# --- create ---------------------------------------------------------------------------------


def test_create_answers_weaves_create_res(api, user):
    """A created row answers {id, created_at, wb_user_id, payload}, created_at in UTC with Z."""
    response = create(api)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"id", "created_at", "wb_user_id", "payload"}
    assert body["wb_user_id"] == wb_user_id_for(user)
    assert body["payload"] == {"output": {"json_valid": True}}
    assert body["created_at"].endswith("Z")
    assert Feedback.objects.filter(pk=body["id"]).exists()


def test_create_then_read_back_every_field(api, user):
    """A created row reads back through /feedback/query with every Weave feedback field."""
    created = create(
        api,
        creator="Jane",
        runnable_ref=SCORER_REF,
        call_ref="weave:///alice/demo/call/scoring-call",
        trigger_ref="weave:///alice/demo/object/trigger:abc",
        annotation_ref="weave:///alice/demo/object/spec:def",
    ).json()
    rows = query(api).json()["result"]
    assert rows == [
        {
            "id": created["id"],
            "project_id": "alice/demo",
            "weave_ref": CALL_REF,
            "feedback_type": "wandb.runnable.ValidJSONScorer",
            "payload": {"output": {"json_valid": True}},
            "creator": "Jane",
            "runnable_ref": SCORER_REF,
            "call_ref": "weave:///alice/demo/call/scoring-call",
            "trigger_ref": "weave:///alice/demo/object/trigger:abc",
            "annotation_ref": "weave:///alice/demo/object/spec:def",
            "wb_user_id": wb_user_id_for(user),
            "created_at": created["created_at"],
        }
    ]


def test_create_keeps_a_client_id(api):
    """A client-given id (Weave sends UUIDv7s) is the row's id."""
    feedback_id = "01a218dd-95b7-7214-954b-32cd16e564d6"
    assert create(api, id=feedback_id).json()["id"] == feedback_id
    assert Feedback.objects.filter(pk=feedback_id).exists()


def test_create_generates_an_id_when_none_is_given(api):
    """Without an id (or with null), the server makes one."""
    assert uuid.UUID(create(api, id=None).json()["id"])


def test_create_ignores_the_clients_wb_user_id(api, user):
    """wb_user_id is the authenticated user's, whatever the client sent."""
    response = create(api, wb_user_id="someone-else")
    assert response.json()["wb_user_id"] == wb_user_id_for(user)
    assert Feedback.objects.get().wb_user_id == wb_user_id_for(user)


def test_create_ignores_unknown_fields(api):
    """Fields Weave's model does not know (newer clients send more) are ignored."""
    assert create(api, scorer_tags=[], span_status_code="UNSET").status_code == 200


def test_create_needs_a_weave_ref_in_the_same_project(api):
    """Feedback on a ref of another project, or on something that is not a weave ref, is 422."""
    for ref in ("weave:///bob/demo/call/c1", "https://example.com/x", "weave:///alice/demo/"):
        response = create(api, weave_ref=ref)
        assert response.status_code == 422, ref
        assert locs(response) == [["body", "weave_ref"]]
    assert not Feedback.objects.exists()


def test_create_reports_missing_fields(api):
    """Each missing required field is one `missing` error."""
    response = api.post("/feedback/create", {"project_id": "alice/demo"}, format="json")
    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [
        (["body", "weave_ref"], "missing"),
        (["body", "feedback_type"], "missing"),
        (["body", "payload"], "missing"),
    ]


@pytest.mark.parametrize(
    ("override", "loc", "type_"),
    [
        ({"payload": ["not", "an", "object"]}, ["body", "payload"], "dict_type"),
        ({"payload": None}, ["body", "payload"], "dict_type"),
        ({"feedback_type": 5}, ["body", "feedback_type"], "string_type"),
        ({"creator": 5}, ["body", "creator"], "string_type"),
        ({"id": "not-a-uuid"}, ["body", "id"], "uuid_parsing"),
        ({"id": 7}, ["body", "id"], "string_type"),
        ({"feedback_type": "x" * 257}, ["body", "feedback_type"], "string_too_long"),
        ({"project_id": "no-slash"}, ["body", "project_id"], "value_error"),
    ],
)
def test_create_checks_types_strictly(api, override, loc, type_):
    """Known fields are type-checked, never coerced; problems are 422 at body.<field>."""
    response = create(api, **override)
    assert response.status_code == 422, response.content
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [(loc, type_)]


def test_create_rejects_nul_characters(api):
    """A NUL character in the payload is a 422 located at the value (PostgreSQL cannot store it),
    not a 500."""
    response = create(api, payload={"note": "a\x00b"})
    assert response.status_code == 422
    assert locs(response) == [["body", "payload", "note"]]


def test_create_on_another_users_project_is_forbidden(client_for, bob):
    """bob may not write feedback to alice/demo."""
    assert create(client_for(bob)).status_code == 403
    assert not Feedback.objects.exists()


def test_group_member_may_create(client_for, bob):
    """A member of Django group "alice" may write to alice/demo."""
    Group.objects.create(name="alice").user_set.add(bob)
    assert create(client_for(bob)).status_code == 200


def test_create_without_credentials_is_401(db):
    """No credentials: 401 with a WWW-Authenticate challenge."""
    response = create(APIClient())
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


# --- batch create ---------------------------------------------------------------------------


def test_batch_as_weave_sends_it_keeps_ids_in_one_insert(api, user):
    """The weave client's batch (with its extra scorer_*/span_* fields) is stored in one INSERT,
    each row under the client's id, answered in order."""
    ids = ["01a218dd-9cf7-713b-bc88-d31c1e51c11d", "01a218dd-9cf7-7ee8-8e55-586c90266671"]
    body = {
        "batch": [
            weave_batch_item(ids[0], {"emoji": "👍"}),
            weave_batch_item(ids[1], {"note": "looks right"}, "wandb.note.1"),
        ]
    }
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/feedback/batch/create", body, format="json")
    assert response.status_code == 200, response.content
    res = response.json()["res"]
    assert [r["id"] for r in res] == ids
    assert [r["payload"] for r in res] == [{"emoji": "👍"}, {"note": "looks right"}]
    assert {r["wb_user_id"] for r in res} == {wb_user_id_for(user)}
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "scoring_feedback"')]
    assert len(inserts) == 1
    assert Feedback.objects.count() == 2


def test_batch_retry_returns_the_stored_rows(api):
    """Sending the same batch again (a client retry) stores nothing new and answers the same rows."""
    body = {"batch": [weave_batch_item("01a218dd-95b7-7214-954b-32cd16e564d6", {"emoji": "👍"})]}
    first = api.post("/feedback/batch/create", body, format="json").json()
    again = api.post("/feedback/batch/create", body, format="json")
    assert again.status_code == 200
    assert again.json() == first
    assert Feedback.objects.count() == 1


def test_batch_id_taken_by_other_feedback_is_422(api):
    """An id already used by different feedback is a 422 at that item's id; nothing is stored."""
    feedback_id = "01a218dd-95b7-7214-954b-32cd16e564d6"
    create(api, id=feedback_id)
    body = {
        "batch": [
            weave_batch_item(str(uuid.uuid4()), {"emoji": "👍"}),
            weave_batch_item(feedback_id, {"note": "different"}, "wandb.note.1"),
        ]
    }
    response = api.post("/feedback/batch/create", body, format="json")
    assert response.status_code == 422
    assert locs(response) == [["body", "batch", 1, "id"]]
    assert Feedback.objects.count() == 1


def test_batch_with_an_id_twice_is_422(api):
    """The same id twice in one batch is a 422 at the second one."""
    feedback_id = str(uuid.uuid4())
    body = {"batch": [weave_batch_item(feedback_id, {"a": 1}), weave_batch_item(feedback_id, {"a": 2})]}
    response = api.post("/feedback/batch/create", body, format="json")
    assert response.status_code == 422
    assert locs(response) == [["body", "batch", 1, "id"]]


def test_batch_errors_are_located_by_index(api):
    """Problems in a batch item are located at body.batch.<index>.<field>, and nothing is stored."""
    good = weave_batch_item(str(uuid.uuid4()), {"a": 1})
    bad = {**weave_batch_item(str(uuid.uuid4()), {"a": 1}), "payload": "x"}
    response = api.post("/feedback/batch/create", {"batch": [good, bad]}, format="json")
    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [
        (["body", "batch", 1, "payload"], "dict_type")
    ]
    assert not Feedback.objects.exists()


def test_batch_on_another_users_project_is_forbidden(client_for, bob):
    """A batch touching a project the user may not write is refused whole."""
    body = {"batch": [weave_batch_item(str(uuid.uuid4()), {"a": 1})]}
    assert client_for(bob).post("/feedback/batch/create", body, format="json").status_code == 403
    assert not Feedback.objects.exists()


def test_empty_batch(api):
    """An empty batch answers an empty res."""
    assert api.post("/feedback/batch/create", {"batch": []}, format="json").json() == {"res": []}


# --- query ----------------------------------------------------------------------------------


@pytest.fixture
def scored(api):
    """Three rows on CALL_REF (two scores and a note) and one on another call."""
    create(api, feedback_type="wandb.runnable.ValidJSONScorer", payload={"output": {"score": 0.9}})
    create(api, feedback_type="wandb.runnable.correctness-judge", payload={"output": {"score": 0.2, "reason": "Wrong"}})
    create(api, feedback_type="wandb.note.1", payload={"note": "looks right"})
    create(api, weave_ref="weave:///alice/demo/call/other", payload={"output": {"score": 0.5}})


def types(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["feedback_type"] for row in response.json()["result"]]


def test_the_weave_clients_query(api, scored):
    """The exact body weave 0.54 sends for call.feedback: $eq of weave_ref, sorted by created_at
    asc, with null fields/limit/offset."""
    body = {
        "project_id": "alice/demo",
        "fields": None,
        "limit": None,
        "offset": None,
        "query": {"$expr": {"$eq": [{"$getField": "weave_ref"}, {"$literal": CALL_REF}]}},
        "sort_by": [{"field": "created_at", "direction": "asc"}],
    }
    response = api.post("/feedback/query", body, format="json")
    assert types(response) == ["wandb.runnable.ValidJSONScorer", "wandb.runnable.correctness-judge", "wandb.note.1"]
    assert response.json()["total_count"] == 3
    assert all(set(row) == ROW_KEYS for row in response.json()["result"])


def test_query_by_payload_number(api, scored):
    """A comparison on a payload path selects by the number stored there."""
    expr = {"$gte": [{"$getField": "payload.output.score"}, {"$literal": 0.5}]}
    response = query(api, query={"$expr": expr})
    assert [row["payload"]["output"]["score"] for row in response.json()["result"]] == [0.9, 0.5]


def test_query_contains_case_insensitive(api, scored):
    """$contains with case_insensitive finds text inside payload values."""
    spec = {"input": {"$getField": "payload.output.reason"}, "substr": {"$literal": "wrong"}, "case_insensitive": True}
    assert types(query(api, query={"$expr": {"$contains": spec}})) == ["wandb.runnable.correctness-judge"]


def test_query_in_and_not(api, scored):
    """$in and $not combine: runnable feedback that is not the judge's."""
    expr = {
        "$and": [
            {"$contains": {"input": {"$getField": "feedback_type"}, "substr": {"$literal": "wandb.runnable."}}},
            {"$not": [{"$in": [{"$getField": "feedback_type"}, [{"$literal": "wandb.runnable.correctness-judge"}]]}]},
        ]
    }
    assert types(query(api, query={"$expr": expr})) == ["wandb.runnable.ValidJSONScorer"] * 2


def test_sort_limit_offset_and_total_count(api, scored):
    """Sorting by a payload number, a page of it, and total_count counting every match."""
    response = query(
        api,
        query={"$expr": {"$gt": [{"$getField": "payload.output.score"}, {"$literal": 0}]}},
        sort_by=[{"field": "payload.output.score", "direction": "desc"}],
        limit=2,
        offset=1,
    )
    assert [row["payload"]["output"]["score"] for row in response.json()["result"]] == [0.5, 0.2]
    assert response.json()["total_count"] == 3


def test_limit_zero_still_counts(api, scored):
    """limit 0 returns no rows but the total."""
    assert query(api, limit=0).json() == {"result": [], "total_count": 4}


def test_fields_project_the_rows(api, scored):
    """`fields` keeps only those keys, payload paths included, in the order asked."""
    response = query(
        api,
        fields=["feedback_type", "payload.output.score", "project_id"],
        sort_by=[{"field": "created_at", "direction": "asc"}],
        limit=2,
    )
    assert response.json()["result"] == [
        {"feedback_type": "wandb.runnable.ValidJSONScorer", "payload.output.score": 0.9, "project_id": "alice/demo"},
        {"feedback_type": "wandb.runnable.correctness-judge", "payload.output.score": 0.2, "project_id": "alice/demo"},
    ]


def test_unknown_field_in_fields_is_422(api):
    """An unknown name in `fields` is a 422 at body.fields.<index>."""
    response = query(api, fields=["id", "inputs"])
    assert response.status_code == 422
    assert locs(response) == [["body", "fields", 1]]


def test_unsupported_operator_is_422_naming_it(api, scored):
    """An operator the server does not translate is a 422 naming it, never a full scan."""
    expr = {"$or": [{"$eq": [{"$getField": "creator"}, {"$literal": "x"}]}, {"$regex": {"input": "x"}}]}
    response = query(api, query={"$expr": expr})
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "query", "$expr", "$or", 1, "$regex"]
    assert detail["type"] == "unsupported_operator"
    assert "$regex" in detail["msg"]


def test_unsupported_sort_field_is_422(api):
    """Sorting by an unknown field is a 422 at body.sort_by.<i>.field."""
    response = query(api, sort_by=[{"field": "inputs.x", "direction": "asc"}])
    assert response.status_code == 422
    assert locs(response) == [["body", "sort_by", 0, "field"]]


@pytest.mark.parametrize(
    ("override", "loc", "type_"),
    [
        ({"limit": -1}, ["body", "limit"], "greater_than_equal"),
        ({"limit": 10_001}, ["body", "limit"], "less_than_equal"),
        ({"limit": "10"}, ["body", "limit"], "int_type"),
        ({"limit": True}, ["body", "limit"], "int_type"),
        ({"offset": -5}, ["body", "offset"], "greater_than_equal"),
        ({"offset": 1.5}, ["body", "offset"], "int_type"),
        ({"query": "weave_ref = 1"}, ["body", "query"], "dict_type"),
        ({"query": {"$expr": "x"}}, ["body", "query", "$expr"], "dict_type"),
        ({"fields": "id"}, ["body", "fields"], "list_type"),
        ({"sort_by": [{"field": "id", "direction": "up"}]}, ["body", "sort_by", 0, "direction"], "literal_error"),
        ({"sort_by": [{"direction": "asc"}]}, ["body", "sort_by", 0, "field"], "missing"),
        ({"project_id": None}, ["body", "project_id"], "string_type"),
    ],
)
def test_query_body_is_validated(api, override, loc, type_):
    """Malformed query bodies are 422 at the offending place, never a 500."""
    response = query(api, **override)
    assert response.status_code == 422, response.content
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [(loc, type_)]


def test_query_ignores_unknown_fields(api, scored):
    """Unknown top-level fields of the query body are ignored."""
    assert query(api, include_total=True).json()["total_count"] == 4


def test_query_on_another_users_project_is_forbidden(scored, client_for, bob):
    """bob may not read alice/demo's feedback."""
    assert query(client_for(bob)).status_code == 403


def test_group_member_may_query(scored, client_for, bob):
    """A member of Django group "alice" reads alice/demo's feedback."""
    Group.objects.create(name="alice").user_set.add(bob)
    assert query(client_for(bob)).json()["total_count"] == 4


def test_query_without_credentials_is_401(db):
    """No credentials: 401."""
    assert query(APIClient()).status_code == 401


def test_query_of_a_project_not_created_yet_is_empty(api):
    """A project with no writes yet has no feedback (200, not 404)."""
    assert query(api, project_id="alice/new").json() == {"result": [], "total_count": 0}


def test_query_of_a_project_not_created_yet_still_checks_the_query(api):
    """An untranslatable query is a 422 even where there is nothing to read."""
    response = query(api, project_id="alice/new", query={"$expr": {"$where": "1"}})
    assert response.status_code == 422


def test_projects_are_isolated(api, scored):
    """A query only ever sees its project's rows, even one that matches everything."""
    create(api, project_id="alice/other", weave_ref="weave:///alice/other/call/c1")
    everything = {"$or": [{"$eq": [{"$getField": "creator"}, {"$literal": None}]}, {"$not": [{"$and": []}]}]}
    assert query(api, query={"$expr": everything}).json()["total_count"] == 4
    response = query(api, project_id="alice/other")
    assert [row["weave_ref"] for row in response.json()["result"]] == ["weave:///alice/other/call/c1"]
