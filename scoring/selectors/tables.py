"""Reading Weave tables (`POST /table/query`, `/table/query_stats`): a table's rows in table
order, or filtered by row digest, sorted by paths into the rows, and paged."""

import json
from dataclasses import dataclass

from scoring.models import Project, Table, TableRow
from scoring.selectors.projects import project_for_read

LOOKUP_CHUNK = 1_000  # digests per IN (...) query


@dataclass(frozen=True)
class TableRowOut:
    digest: str
    val: object
    original_index: int


def table_query(
    *,
    user,
    project_id: str,
    digest: str,
    row_digests: list[str] | None = None,
    sort_by: list[dict] | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> list[TableRowOut]:
    """A page of the table's rows, each with its index in the table (none for an unknown table,
    as in Weave); 403 when the user may not read the project."""
    project = project_for_read(user=user, project_id=project_id)
    table = None if project is None else Table.objects.filter(project=project, digest=digest).first()
    if table is None:
        return []
    indexed = list(enumerate(table.row_digests))
    if row_digests is not None:
        wanted = set(row_digests)
        indexed = [(index, row_digest) for index, row_digest in indexed if row_digest in wanted]
    start = offset or 0
    if not sort_by:
        indexed = indexed[start:] if limit is None else indexed[start : start + limit]
        vals = rows_by_digest(project=project, digests=[d for _, d in indexed])
        return [TableRowOut(d, vals.get(d), index) for index, d in indexed]
    vals = rows_by_digest(project=project, digests=[d for _, d in indexed])
    rows = [TableRowOut(d, vals.get(d), index) for index, d in indexed]
    for item in reversed(sort_by):  # stable sorts, least significant key first
        path = item["field"].split(".")
        present = [row for row in rows if _sort_key(_at(row.val, path)) is not None]
        missing = [row for row in rows if _sort_key(_at(row.val, path)) is None]
        present.sort(key=lambda row: _sort_key(_at(row.val, path)), reverse=item["direction"] == "desc")
        rows = present + missing  # nulls last either way
    return rows[start:] if limit is None else rows[start : start + limit]


def table_row_count(*, user, project_id: str, digest: str) -> int:
    """How many rows the table has (0 for an unknown table)."""
    project = project_for_read(user=user, project_id=project_id)
    table = None if project is None else Table.objects.filter(project=project, digest=digest).first()
    return 0 if table is None else len(table.row_digests)


def rows_by_digest(*, project: Project, digests: list[str]) -> dict[str, object]:
    """The values of the project's table rows with these digests."""
    unique = list(dict.fromkeys(digests))
    found: dict[str, object] = {}
    for start in range(0, len(unique), LOOKUP_CHUNK):
        found.update(
            TableRow.objects.filter(project=project, digest__in=unique[start : start + LOOKUP_CHUNK]).values_list(
                "digest", "val"
            )
        )
    return found


def _at(value, path: list[str]):
    for key in path:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def _sort_key(value):
    """Numbers before strings before everything else (by its JSON text); None for no value."""
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return (0, value, "")
    if isinstance(value, str):
        return (1, 0, value)
    return (2, 0, json.dumps(value, sort_keys=True))
