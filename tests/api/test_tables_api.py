"""Weave's table endpoints: `/table/create` (rows and table content-addressed with Weave's
digests), `/table/query` and `/table/query_stats`."""

import pytest

from scoring.models import Project, Table, TableRow
from tests.weave_offline import digest

compute_row_digest, compute_table_digest = digest.compute_row_digest, digest.compute_table_digest

ROWS = [{"question": "2+2?", "n": 2}, {"question": "capital of France?", "n": 10}, {"question": "hi", "n": 1}]


def post(api, url, body):
    return api.post(url, body, format="json")


def create(api, rows=ROWS, **fields):
    return post(api, "/table/create", {"table": {"project_id": "alice/demo", "rows": rows, **fields}})


def query(api, digest, **fields):
    response = post(api, "/table/query", {"project_id": "alice/demo", "digest": digest, **fields})
    assert response.status_code == 200, response.content
    return response.json()["rows"]


def test_create_answers_weaves_digests(api, user):
    """The table's digest and its rows' digests are the ones the weave package computes."""
    response = create(api)
    assert response.status_code == 200, response.content
    row_digests = [compute_row_digest(row) for row in ROWS]
    assert response.json() == {"digest": compute_table_digest(row_digests), "row_digests": row_digests}


def test_expected_digest_is_checked(api, user):
    """The client's expected digest is accepted when right, and a 409 (Weave's answer) when wrong."""
    right = compute_table_digest([compute_row_digest(row) for row in ROWS])
    assert create(api, expected_digest=right).status_code == 200
    assert create(api, rows=ROWS[:1], expected_digest=right).status_code == 409


def test_rows_are_stored_once(api, user):
    """A row shared by two tables (or repeated in one) is stored once; each table keeps its order."""
    create(api)
    create(api, rows=[ROWS[2], ROWS[0], ROWS[0]])
    assert TableRow.objects.count() == 3
    assert Table.objects.count() == 2


def test_query_answers_rows_in_table_order(api, user):
    """Rows come back in table order with their digest and index."""
    created = create(api).json()
    rows = query(api, created["digest"])
    assert [(r["val"], r["digest"], r["original_index"]) for r in rows] == [
        (row, digest, index) for index, (row, digest) in enumerate(zip(ROWS, created["row_digests"], strict=True))
    ]


def test_query_filters_by_row_digest_and_pages(api, user):
    """`filter.row_digests` keeps those rows; `offset`/`limit` page what remains."""
    created = create(api).json()
    wanted = created["row_digests"][1:]
    assert [r["val"] for r in query(api, created["digest"], filter={"row_digests": wanted})] == ROWS[1:]
    assert [r["val"] for r in query(api, created["digest"], offset=1, limit=1)] == [ROWS[1]]


def test_query_sorts_by_a_path_into_the_rows(api, user):
    """`sort_by` orders rows by a dotted path into their values."""
    digest = create(api).json()["digest"]
    rows = query(api, digest, sort_by=[{"field": "n", "direction": "desc"}])
    assert [r["val"]["n"] for r in rows] == [10, 2, 1]
    assert [r["original_index"] for r in rows] == [1, 0, 2]


def test_query_of_an_unknown_table_is_empty(api, user):
    """A digest that names no table answers no rows, as in Weave."""
    create(api)
    assert query(api, "0" * 64) == []


def test_query_stats_counts_rows(api, user):
    """`/table/query_stats` answers the table's row count."""
    digest = create(api).json()["digest"]
    response = post(api, "/table/query_stats", {"project_id": "alice/demo", "digest": digest})
    assert response.json() == {"count": 3}


@pytest.mark.parametrize(
    ("rows", "loc"),
    [(["not a row"], ["body", "table", "rows", 0]), ({"a": 1}, ["body", "table", "rows"])],
)
def test_rows_must_be_a_list_of_objects(api, user, rows, loc):
    """Rows that are not objects, or not in a list, are a located 422."""
    response = create(api, rows=rows)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [loc]


def test_create_in_a_project_of_another_user_is_403(client_for, make_user):
    """The project rule applies to tables."""
    assert create(client_for(make_user("bob"))).status_code == 403
    assert not Project.objects.exists()
