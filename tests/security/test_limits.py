"""One request cannot occupy the server: list parameters are capped (422 before any item is
looked at), GraphQL has depth and field limits, uploads have a size limit and are refused
before they are read when the user may not write the project."""

import pytest

from scoring.models import File
from tests.security.conftest import PROJECT

SORT = {"field": "created_at", "direction": "asc"}


def assert_too_long(response, loc: list):
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"] == loc and detail[0]["type"] == "too_long", detail


def test_feedback_fields_are_capped(http):
    """/feedback/query with 16,000 `fields` is a 422 on the list, not seconds of CPU."""
    response = http.post("/feedback/query", json={"project_id": PROJECT, "fields": ["id"] * 16_000})
    assert_too_long(response, ["body", "fields"])


def test_feedback_fields_dedupe_is_linear(http):
    """Up to the cap, repeated fields are accepted and answered once each."""
    response = http.post("/feedback/query", json={"project_id": PROJECT, "fields": ["id", "payload"] * 500})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/objs/query", {"project_id": PROJECT, "sort_by": [SORT] * 5_000}),
        ("/calls/stream_query", {"project_id": PROJECT, "sort_by": [SORT] * 5_000}),
        ("/table/query", {"project_id": PROJECT, "digest": "abc", "sort_by": [SORT] * 5_000}),
        ("/feedback/query", {"project_id": PROJECT, "sort_by": [SORT] * 5_000}),
    ],
)
def test_sort_keys_are_capped(http, path, body):
    """Thousands of sort_by keys are a 422 on sort_by."""
    assert_too_long(http.post(path, json=body), ["body", "sort_by"])


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        (
            "/calls/query_stats",
            {"project_id": PROJECT, "filter": {"call_ids": ["c"] * 20_000}},
            ["body", "filter", "call_ids"],
        ),
        (
            "/objs/query",
            {"project_id": PROJECT, "filter": {"object_ids": ["o"] * 20_000}},
            ["body", "filter", "object_ids"],
        ),
        ("/refs/read_batch", {"refs": ["weave:///alice/demo/object/o:latest"] * 20_000}, ["body", "refs"]),
        (
            "/calls/score",
            {"project_id": PROJECT, "call_ids": [], "scorer_refs": ["r"] * 5_000},
            ["body", "scorer_refs"],
        ),
    ],
)
def test_filter_and_batch_lists_are_capped(http, path, body, loc):
    """Filter id lists, ref batches and scorer lists have caps; over them is a 422 on the list."""
    assert_too_long(http.post(path, json=body), loc)


def test_graphql_aliases_are_capped(http):
    """3,000 aliased project lookups in one GraphQL query are refused before any runs."""
    fields = " ".join(f'p{n}: project(name: "demo", entityName: "alice") {{ id }}' for n in range(3_000))

    response = http.post("/graphql", json={"query": f"query {{ {fields} }}"})

    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None and body["errors"]


def test_graphql_fragment_spreads_count_against_the_cap(http):
    """A fragment of 20 lookups spread 20 times (400 lookups) is refused like 400 aliases."""
    lookups = " ".join(f'p{n}: project(name: "demo", entityName: "alice") {{ id }}' for n in range(20))
    spreads = " ".join(f"s{n}: __typename ...F" for n in range(20))
    query = f"query {{ {spreads} }} fragment F on Query {{ {lookups} }}"

    body = http.post("/graphql", json={"query": query}).json()

    assert body["data"] is None and "more than" in body["errors"][0]["message"]


def test_graphql_depth_is_capped(http):
    """A query nested deeper than the limit is refused, and so is a tower of 150 nested inline
    fragments (each selection counts)."""
    deep_fields = "query { " + "viewer { defaultEntity { " * 6 + "id" + " } }" * 6 + " }"
    fragments = "query { viewer { " + "... on User { " * 150 + "id" + " }" * 150 + " } }"

    for query in (deep_fields, fragments):
        body = http.post("/graphql", json={"query": query}).json()
        assert body["data"] is None and body["errors"], query[:40]


def test_weave_client_graphql_queries_still_work(http):
    """The queries weave.init sends stay within the limits."""
    response = http.post("/graphql", json={"query": "query { viewer { id username defaultEntity { name } } }"})
    assert response.status_code == 200 and response.json()["data"]["viewer"]["username"] == "alice"


def test_file_over_the_limit_is_413_and_not_stored(http, settings):
    """A file larger than SCORING_FILE_MAX_BYTES is a 413 and nothing is stored."""
    settings.SCORING_FILE_MAX_BYTES = 10_000

    response = http.post("/file/create", data={"project_id": PROJECT}, files={"file": ("big.bin", b"x" * 50_000)})

    assert response.status_code == 413, response.text
    assert "detail" in response.json() and not File.objects.exists()


def test_file_within_the_limit_is_stored(http):
    """A small file is stored and answered with its digest."""
    response = http.post("/file/create", data={"project_id": PROJECT}, files={"file": ("a.txt", b"hello")})
    assert response.status_code == 200 and response.json()["digest"]


def test_upload_to_a_project_the_user_may_not_write_is_refused_before_it_is_read(http, live_server):
    """An upload to bob's project is a 403 raised when the file part begins: the guard saw only
    the project field, and nothing is stored."""
    response = http.post("/file/create", data={"project_id": "bob/secret"}, files={"file": ("a.bin", b"y" * 5_000)})

    assert response.status_code == 403, response.text
    assert not File.objects.exists()


def test_file_part_before_the_project_field_is_422(http):
    """A multipart body whose file comes before project_id is refused: the project must be known
    before any file byte is read."""
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\nzzz\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="project_id"\r\n\r\n{PROJECT}\r\n--{boundary}--\r\n'
    ).encode()

    response = http.post(
        "/file/create", content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )

    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "project_id"]
