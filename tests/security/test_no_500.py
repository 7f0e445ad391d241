"""No input produces a 500: strings the database cannot store, oversized bodies, projects that
do not exist yet and failures inside a streamed answer all get the contract's error shapes."""

import json

import httpx
import pytest

from tests.conftest import basic
from tests.security.conftest import PROJECT, log_call

NUL, SURROGATE = "a\u0000b", "a\ud800b"


def post_raw(http, path: str, body: str, **headers) -> httpx.Response:
    """Post a JSON text as is (json.dumps escapes NUL and lone surrogates as \\u0000, \\ud800)."""
    return http.post(path, content=body.encode(), headers={"Content-Type": "application/json", **headers})


def assert_422(response: httpx.Response) -> list[dict]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and all({"loc", "msg", "type"} <= set(e) for e in detail)
    return detail


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/calls/score", lambda bad: {"project_id": PROJECT, "call_ids": [bad], "scorer_refs": []}),
        ("/calls/score", lambda bad: {"project_id": PROJECT, "call_ids": ["c1"], "scorer_refs": [bad]}),
        ("/calls/stream_query", lambda bad: {"project_id": PROJECT, "filter": {"op_names": [bad]}}),
        ("/calls/stream_query", lambda bad: {"project_id": PROJECT, "filter": {"call_ids": [bad]}}),
        ("/calls/query_stats", lambda bad: {"project_id": PROJECT, "filter": {"call_ids": [bad]}}),
        ("/objs/query", lambda bad: {"project_id": PROJECT, "filter": {"object_ids": [bad]}}),
        ("/feedback/query", lambda bad: {"project_id": PROJECT, "fields": [bad]}),
        ("/obj/read", lambda bad: {"project_id": PROJECT, "object_id": bad, "digest": "latest"}),
        ("/call/read", lambda bad: {"project_id": PROJECT, "id": bad}),
        ("/refs/read_batch", lambda bad: {"refs": [f"weave:///{PROJECT}/object/{bad}:latest"]}),
    ],
)
def test_unstorable_strings_anywhere_in_a_body_are_422(http, path, body, bad):
    """A NUL or a lone surrogate in any string of a JSON body is a 422 located at that string."""
    response = post_raw(http, path, json.dumps(body(bad)))

    detail = assert_422(response)
    assert detail[0]["loc"][0] == "body"


def test_nul_in_a_key_is_422(http):
    """An object key with a NUL is refused like a value."""
    assert_422(post_raw(http, "/calls/query_stats", '{"project_id": "alice/demo", "filter": {"a\\u0000": 1}}'))


def test_nul_inside_a_url_encoded_ref_is_422(http):
    """A ref whose name holds %00 (a NUL once URL-decoded) is a 422, not a database error."""
    ref = f"weave:///{PROJECT}/object/evil%00name:latest"
    detail = assert_422(http.post("/calls/score", json={"project_id": PROJECT, "call_ids": [], "scorer_refs": [ref]}))
    assert detail[0]["loc"] == ["body", "scorer_refs", 0]


def test_wb_user_id_longer_than_its_column_is_422(http):
    """A client wb_user_id longer than the column that keeps it is a 422 naming the field."""
    body = {"project_id": PROJECT, "call_ids": [], "scorer_refs": [], "wb_user_id": "x" * 5_000}
    detail = assert_422(http.post("/calls/score", json=body))
    assert detail[0]["loc"] == ["body", "wb_user_id"]


def test_surrogate_in_query_stats_ids_is_422(http):
    """A lone surrogate in /calls/query_stats call ids is a 422."""
    assert_422(
        post_raw(http, "/calls/query_stats", '{"project_id": "alice/demo", "filter": {"call_ids": ["\\udc00"]}}')
    )


def test_empty_submit_on_a_project_that_does_not_exist_yet(http):
    """/calls/score with empty lists on a new project of the user's records an empty job."""
    response = http.post("/calls/score", json={"project_id": "alice/brand-new", "call_ids": [], "scorer_refs": []})

    assert response.status_code == 200, response.text
    assert response.json()["task_count"] == 0


def test_body_over_the_upload_limit_is_413_json(http, settings):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 with a JSON detail."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = {"project_id": PROJECT, "call_ids": ["x" * 2_000], "scorer_refs": []}

    response = http.post("/calls/score", json=body)

    assert response.status_code == 413, response.text
    assert "detail" in response.json()


def test_nul_in_the_url_is_422(live_server, api_key):
    """A NUL (%00) in a path segment of a v2 route is a 422, not a database error."""
    response = httpx.post(
        f"{live_server.url}/v2/alice/de%00mo/call/start",
        json={},
        headers={"Authorization": basic(api_key)},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "path"


def test_stream_query_errors_before_the_first_byte_are_json(http):
    """A stream_query the database refuses (here a sort on a JSON path the query cannot cast)
    is answered as a JSON error with its status, never as a half-sent stream."""
    log_call(http)
    response = http.post(
        "/calls/stream_query",
        json={"project_id": PROJECT, "sort_by": [{"field": "inputs.question", "direction": "asc"}], "limit": 1},
    )

    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert [json.loads(line)["id"] for line in response.text.splitlines()] == ["c1"]


@pytest.mark.parametrize(
    "query",
    [
        'query { project(name: "a\\u0000b", entityName: "alice") { id } }',
        'query { entity(name: "a\\u0000b") { id name } }',
        'mutation { upsertModel(input: {name: "x\\u0000", entityName: "alice"}) { model { id } } }',
    ],
)
def test_graphql_never_shows_database_error_text(http, query):
    """A NUL in a GraphQL string argument gets a GraphQL error that carries no database text."""
    response = http.post("/graphql", json={"query": query})

    assert response.status_code == 200, response.text
    text = json.dumps(response.json())
    assert "NUL" not in text or "0x00" not in text
    assert "psycopg" not in text.lower() and "postgres" not in text.lower() and "0x00" not in text
