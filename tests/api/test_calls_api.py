"""Weave's call endpoints: `/call/start`, `/call/end`, `/call/upsert_batch` and `/call/read`, with
the request shapes the weave client sends, in either order, and their errors."""

import json
import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from scoring.models import Call
from scoring.weave.ids import wb_user_id_for

PROJECT = "alice/demo"
STARTED_AT = "2026-11-26T17:18:27.565440Z"
ENDED_AT = "2026-11-26T17:18:27.576708Z"


def start_body(call_id="c1", **over):
    """A start as the weave client sends it (captured), extras such as otel_dump included."""
    return {
        "project_id": PROJECT,
        "id": call_id,
        "op_name": "weave:///alice/demo/op/pipeline:6WG4I2b8JsbMPCZi5V0wwVO4NpIOTCxr9q5khcGz1X8",
        "display_name": None,
        "trace_id": "t-" + call_id,
        "parent_id": None,
        "thread_id": None,
        "turn_id": None,
        "started_at": STARTED_AT,
        "attributes": {"weave": {"python": {"type": "function"}, "client_version": "0.54.0"}},
        "inputs": {"question": "nested?"},
        "otel_dump": None,
        "wb_user_id": None,
        "wb_run_id": None,
        "wb_run_step": None,
        **over,
    }


def end_body(call_id="c1", **over):
    """An end as the weave client sends it (captured), with the trace_id and started_at it adds."""
    return {
        "project_id": PROJECT,
        "id": call_id,
        "trace_id": "t-" + call_id,
        "is_eval": False,
        "ended_at": ENDED_AT,
        "started_at": STARTED_AT,
        "exception": None,
        "output": '{"answer": "NESTED?"}',
        "summary": {"status_counts": {"success": 2, "error": 0}},
        "wb_run_step_end": None,
        **over,
    }


def post(client, url, body):
    return client.post(url, body, format="json")


def read(client, call_id="c1", project_id=PROJECT):
    response = post(client, "/call/read", {"project_id": project_id, "id": call_id})
    assert response.status_code == 200, response.content
    return response.json()["call"]


def locs(response):
    assert response.status_code == 422, response.content
    return [(d["loc"], d["type"]) for d in response.json()["detail"]]


# start and end


def test_start_answers_the_ids_it_was_given(api):
    """A start with an id and a trace id answers exactly those."""
    response = post(api, "/call/start", {"start": start_body()})
    assert response.status_code == 200, response.content
    assert response.json() == {"id": "c1", "trace_id": "t-c1"}


def test_start_generates_time_ordered_ids_when_absent(api):
    """Without id and trace_id the server makes UUID v7s, and stores the call under them."""
    response = post(api, "/call/start", {"start": start_body(id=None, trace_id=None)})
    assert response.status_code == 200, response.content
    ids = response.json()
    assert uuid.UUID(ids["id"]).version == 7
    assert uuid.UUID(ids["trace_id"]).version == 7
    assert ids["id"] != ids["trace_id"]
    assert Call.objects.get(call_id=ids["id"]).trace_id == ids["trace_id"]


def test_start_then_end_reads_back_as_one_call(api, user):
    """A call started then ended reads back in Weave's CallSchema, datetimes in ISO 8601 with Z."""
    post(api, "/call/start", {"start": start_body(display_name="pipe", wb_run_id="run-1", wb_run_step=3)})
    response = post(api, "/call/end", {"end": end_body(wb_run_step_end=4)})
    assert response.status_code == 200, response.content
    assert response.json() == {}
    assert read(api) == {
        "id": "c1",
        "project_id": PROJECT,
        "op_name": start_body()["op_name"],
        "display_name": "pipe",
        "trace_id": "t-c1",
        "parent_id": None,
        "thread_id": None,
        "turn_id": None,
        "started_at": STARTED_AT,
        "ended_at": ENDED_AT,
        "exception": None,
        "attributes": start_body()["attributes"],
        "inputs": {"question": "nested?"},
        "output": '{"answer": "NESTED?"}',
        "summary": {"status_counts": {"success": 2, "error": 0}},
        "wb_user_id": wb_user_id_for(user),
        "wb_run_id": "run-1",
        "wb_run_step": 3,
        "wb_run_step_end": 4,
        "deleted_at": None,
    }


def test_end_before_start_keeps_both_halves(api):
    """An end that arrives first is kept, and the later start fills in its own fields only."""
    assert post(api, "/call/end", {"end": end_body(exception="boom", output=None)}).status_code == 200
    ended = read(api)
    assert ended["ended_at"] == ENDED_AT
    assert ended["op_name"] == ""

    assert post(api, "/call/start", {"start": start_body()}).status_code == 200
    call = read(api)
    assert (call["op_name"], call["inputs"], call["started_at"]) == (
        start_body()["op_name"],
        {"question": "nested?"},
        STARTED_AT,
    )
    assert (call["ended_at"], call["exception"], call["summary"]) == (ENDED_AT, "boom", end_body()["summary"])


def test_a_start_after_the_end_does_not_erase_it(api):
    """A start replayed after the end leaves the end's fields as they were."""
    post(api, "/call/start", {"start": start_body()})
    post(api, "/call/end", {"end": end_body()})
    post(api, "/call/start", {"start": start_body()})
    assert read(api)["output"] == '{"answer": "NESTED?"}'


def test_times_with_offsets_are_stored_in_utc(api):
    """A started_at with a UTC offset reads back as the same instant, in UTC."""
    post(api, "/call/start", {"start": start_body(started_at="2026-11-26T19:18:27+02:00")})
    assert read(api)["started_at"] == "2026-11-26T17:18:27Z"


def test_wb_user_id_is_set_by_the_server(api, user):
    """Whatever wb_user_id the client sends, the stored call has the authenticated user's."""
    post(api, "/call/start", {"start": start_body(wb_user_id="someone-else")})
    assert Call.objects.get(call_id="c1").wb_user_id == wb_user_id_for(user)


# upsert_batch


def test_upsert_batch_answers_in_request_order_whatever_the_order_of_modes(api):
    """A batch of ends and starts in any order answers one result per item, in order, and
    stores every call whole."""
    batch = [
        {"mode": "end", "req": {"end": end_body("a")}},
        {"mode": "start", "req": {"start": start_body("b")}},
        {"mode": "start", "req": {"start": start_body("a")}},
        {"mode": "end", "req": {"end": end_body("b")}},
    ]
    response = post(api, "/call/upsert_batch", {"batch": batch})
    assert response.status_code == 200, response.content
    assert response.json() == {"res": [{}, {"id": "b", "trace_id": "t-b"}, {"id": "a", "trace_id": "t-a"}, {}]}
    for call_id in ("a", "b"):
        call = read(api, call_id)
        assert call["started_at"] == STARTED_AT
        assert call["ended_at"] == ENDED_AT


def test_upsert_batch_repeated_ids_last_one_wins_per_mode(api):
    """An id repeated within a batch is written once per mode, with the last item's values."""
    batch = [
        {"mode": "start", "req": {"start": start_body(inputs={"n": 1})}},
        {"mode": "end", "req": {"end": end_body(output="first")}},
        {"mode": "start", "req": {"start": start_body(inputs={"n": 2})}},
        {"mode": "end", "req": {"end": end_body(output="second")}},
    ]
    response = post(api, "/call/upsert_batch", {"batch": batch})
    assert response.status_code == 200, response.content
    assert len(response.json()["res"]) == 4
    call = read(api)
    assert (call["inputs"], call["output"]) == ({"n": 2}, "second")
    assert Call.objects.count() == 1


def test_upsert_batch_without_mode_goes_by_the_request(api):
    """An item without `mode` is a start or an end according to the key inside `req`."""
    batch = [{"req": {"end": end_body()}}, {"req": {"start": start_body()}}]
    response = post(api, "/call/upsert_batch", {"batch": batch})
    assert response.json() == {"res": [{}, {"id": "c1", "trace_id": "t-c1"}]}


def test_upsert_batch_of_a_thousand_takes_a_handful_of_queries(api, django_assert_max_num_queries):
    """A batch of 1,000 starts and 1,000 ends is written set-based, not one query per item."""
    batch = [{"mode": "start", "req": {"start": start_body(f"c{i}")}} for i in range(1000)]
    batch += [{"mode": "end", "req": {"end": end_body(f"c{i}")}} for i in range(1000)]
    # Django binds at most 999 parameters per statement on SQLite, so it needs more statements there.
    with django_assert_max_num_queries(15 if connection.vendor == "postgresql" else 100):
        response = post(api, "/call/upsert_batch", {"batch": batch})
    assert response.status_code == 200, response.content
    assert Call.objects.filter(ended_at__isnull=False, started_at__isnull=False).count() == 1000


def test_empty_batch_answers_an_empty_list(api):
    """An empty batch is valid and answers no results."""
    assert post(api, "/call/upsert_batch", {"batch": []}).json() == {"res": []}


def test_upsert_batch_may_span_projects(api):
    """Items of one batch may name different projects of the user; each call lands in its own."""
    batch = [
        {"mode": "start", "req": {"start": start_body()}},
        {"mode": "start", "req": {"start": start_body(project_id="alice/other")}},
    ]
    assert post(api, "/call/upsert_batch", {"batch": batch}).status_code == 200
    assert sorted(Call.objects.values_list("project__name", flat=True)) == ["demo", "other"]


# read


def test_read_of_an_unknown_call_is_null(api):
    """Reading an id that was never written answers `{"call": null}`."""
    post(api, "/call/start", {"start": start_body()})
    assert read(api, "nope") is None


def test_read_in_a_project_that_does_not_exist_is_null(api):
    """Reading from a project nobody has written to yet answers `{"call": null}`."""
    assert read(api, "c1", project_id="alice/never") is None


# access


def test_another_users_project_is_forbidden_to_write(client_for, make_user):
    """Bob may not start calls in alice/demo: 403, and nothing is stored."""
    bob = client_for(make_user("bob"))
    assert post(bob, "/call/start", {"start": start_body()}).status_code == 403
    assert post(bob, "/call/end", {"end": end_body()}).status_code == 403
    assert not Call.objects.exists()


def test_another_users_project_is_forbidden_to_read(api, client_for, make_user):
    """Bob may not read alice/demo's calls."""
    post(api, "/call/start", {"start": start_body()})
    bob = client_for(make_user("bob"))
    assert post(bob, "/call/read", {"project_id": PROJECT, "id": "c1"}).status_code == 403


def test_a_batch_with_one_forbidden_project_writes_nothing(client_for, make_user):
    """A batch is all or nothing: one item in another user's project makes it a 403."""
    bob = client_for(make_user("bob"))
    batch = [
        {"mode": "start", "req": {"start": start_body(project_id="bob/mine")}},
        {"mode": "start", "req": {"start": start_body(project_id=PROJECT)}},
    ]
    assert post(bob, "/call/upsert_batch", {"batch": batch}).status_code == 403
    assert not Call.objects.exists()


def test_members_of_the_entity_group_may_write_and_read(client_for, make_user):
    """A user in the Django Group named like the entity may act on its projects."""
    carol = make_user("carol")
    carol.groups.add(Group.objects.create(name="alice"))
    client = client_for(carol)
    assert post(client, "/call/start", {"start": start_body()}).status_code == 200
    assert read(client)["id"] == "c1"


@pytest.mark.parametrize("url", ["/call/start", "/call/end", "/call/upsert_batch", "/call/read"])
def test_no_credentials_is_401(db, url):
    """Every call endpoint requires authentication, and says how in WWW-Authenticate."""
    response = APIClient().post(url, {}, format="json")
    assert response.status_code == 401
    assert response.has_header("WWW-Authenticate")


# validation


def test_start_missing_fields_are_each_reported(api):
    """Each missing required field of a start is one `missing` error at body.start.<field>."""
    response = post(api, "/call/start", {"start": {}})
    assert locs(response) == [
        (["body", "start", field], "missing")
        for field in ("project_id", "op_name", "started_at", "attributes", "inputs")
    ]


def test_end_missing_fields_are_each_reported(api):
    """Each missing required field of an end is one `missing` error at body.end.<field>."""
    response = post(api, "/call/end", {"end": {}})
    assert locs(response) == [
        (["body", "end", field], "missing") for field in ("project_id", "id", "ended_at", "summary")
    ]


def test_missing_start_object_is_reported(api):
    """A body without `start` is a `missing` error at body.start."""
    assert locs(post(api, "/call/start", {"begin": {}})) == [(["body", "start"], "missing")]


@pytest.mark.parametrize(
    ("override", "field", "type_"),
    [
        ({"started_at": "yesterday"}, "started_at", "datetime_from_date_parsing"),
        ({"started_at": "2026-13-01T00:00:00Z"}, "started_at", "datetime_from_date_parsing"),
        ({"started_at": 1764177507}, "started_at", "datetime_type"),
        ({"started_at": None}, "started_at", "datetime_type"),
        ({"op_name": 7}, "op_name", "string_type"),
        ({"id": 7}, "id", "string_type"),
        ({"id": ""}, "id", "string_too_short"),
        ({"id": "x" * 129}, "id", "string_too_long"),
        ({"attributes": []}, "attributes", "dict_type"),
        ({"inputs": None}, "inputs", "dict_type"),
        ({"wb_run_step": "3"}, "wb_run_step", "int_type"),
        ({"wb_run_step": True}, "wb_run_step", "int_type"),
        ({"wb_run_step": 1.5}, "wb_run_step", "int_type"),
        ({"wb_run_step": 2**63}, "wb_run_step", "int_range"),
        ({"wb_user_id": 12}, "wb_user_id", "string_type"),
        ({"display_name": "a\u0000b"}, "display_name", "string_unstorable"),
    ],
)
def test_start_type_errors_are_located(api, override, field, type_):
    """A known field of the wrong type or unstorable is a 422 at body.start.<field>."""
    response = post(api, "/call/start", {"start": start_body(**override)})
    assert locs(response) == [(["body", "start", field], type_)]


def test_unstorable_text_inside_inputs_is_located(api):
    """A NUL character deep inside inputs is a 422 located down to its key."""
    response = post(api, "/call/start", {"start": start_body(inputs={"q": [{"a": "x\u0000"}]})})
    assert locs(response) == [(["body", "start", "inputs", "q", 0, "a"], "string_unstorable")]


def test_lone_surrogates_are_refused(api):
    """A string with a lone surrogate (valid JSON, not encodable as UTF-8) is a 422."""
    raw = json.dumps({"start": start_body(op_name="\ud800")}).encode()
    response = api.post("/call/start", raw, content_type="application/json")
    assert locs(response) == [(["body", "start", "op_name"], "string_unstorable")]


def test_too_deeply_nested_values_are_refused(api):
    """A value nested deeper than the server can safely store and serve is a 422 at its field."""
    deep = []
    for _ in range(300):
        deep = [deep]
    response = post(api, "/call/start", {"start": start_body(inputs={"deep": deep})})
    assert locs(response) == [(["body", "start", "inputs"], "json_too_deep")]


def test_non_finite_numbers_are_refused(api):
    """A number too large for a double (parsed as infinity) is a 422, not a database error."""
    raw = json.dumps({"end": end_body(output="INF")}).replace('"INF"', "1e400")
    response = api.post("/call/end", raw, content_type="application/json")
    assert locs(response) == [(["body", "end", "output"], "finite_number")]


def test_malformed_project_id_is_422(api):
    """A project id that is not entity/project is a 422 at its location."""
    response = post(api, "/call/start", {"start": start_body(project_id="demo")})
    assert locs(response) == [(["body", "start", "project_id"], "value_error")]


def test_batch_errors_are_located_by_index(api):
    """Errors inside a batch are located by item index, down to the field."""
    batch = [
        {"mode": "start", "req": {"start": start_body()}},
        {"mode": "end", "req": {"end": end_body(ended_at="nope")}},
        {"mode": "stop", "req": {}},
        {"mode": "start"},
        "not an item",
    ]
    response = post(api, "/call/upsert_batch", {"batch": batch})
    assert locs(response) == [
        (["body", "batch", 1, "req", "end", "ended_at"], "datetime_from_date_parsing"),
        (["body", "batch", 2, "mode"], "literal_error"),
        (["body", "batch", 3, "req"], "missing"),
        (["body", "batch", 4], "model_attributes_type"),
    ]
    assert not Call.objects.exists()


def test_batch_that_is_not_a_list_is_422(api):
    """`batch` must be a list."""
    assert locs(post(api, "/call/upsert_batch", {"batch": {}})) == [(["body", "batch"], "list_type")]


def test_read_type_errors_are_located(api):
    """A read with a non-string id is a 422 at body.id."""
    assert locs(post(api, "/call/read", {"project_id": PROJECT, "id": 1})) == [(["body", "id"], "string_type")]
