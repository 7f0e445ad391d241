"""Reading feedback (`POST /feedback/query`): one project's rows, filtered, sorted, paged and
projected by the database, in the shape of Weave's feedback rows."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import F

from scoring.models import Feedback
from scoring.selectors.projects import project_for_read
from scoring.weave.query import Column, QueryFields, order_by, path_index, query_to_q

MAX_LIMIT = 10_000

FEEDBACK_FIELDS = QueryFields(
    columns={
        "id": Column("id", "uuid"),
        "weave_ref": Column("weave_ref"),
        "feedback_type": Column("feedback_type"),
        "creator": Column("creator", nullable=True),
        "runnable_ref": Column("runnable_ref", nullable=True),
        "call_ref": Column("call_ref", nullable=True),
        "trigger_ref": Column("trigger_ref", nullable=True),
        "annotation_ref": Column("annotation_ref", nullable=True),
        "wb_user_id": Column("wb_user_id"),
        "created_at": Column("created_at", "datetime"),
    },
    json_columns={"payload": "payload"},
)
ROW_FIELDS = (
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
)
# Ties (and requests without sort_by) come back in insertion order.
DEFAULT_ORDER = (F("created_at").asc(), F("id").asc())


@dataclass(frozen=True)
class FeedbackPage:
    result: list[dict]
    total_count: int


def feedback_query(
    *,
    user,
    project_id: str,
    fields: list[str] | None = None,
    query: dict | None = None,
    sort_by: list[dict] | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> FeedbackPage:
    """The project's feedback matching `query` (Weave's $expr), and how many match in all.

    403 when the user may not read the project; a project that does not exist yet has no
    feedback. A query, sort or field the server cannot translate raises QueryError."""
    project = project_for_read(user=user, project_id=project_id)
    condition = query_to_q(query, FEEDBACK_FIELDS)
    ordering = [*order_by(sort_by, FEEDBACK_FIELDS), *DEFAULT_ORDER]
    columns, keys = _projection(fields)
    if project is None:
        return FeedbackPage(result=[], total_count=0)

    rows = Feedback.objects.filter(project=project)
    if condition is not None:
        rows = rows.filter(condition)
    start = offset or 0
    stop = start + (MAX_LIMIT if limit is None else min(limit, MAX_LIMIT))
    page = rows.order_by(*ordering).values(*(columns or ["id"]))[start:stop]
    result = [
        {name: project_id if source is None else _json(_at(values[source], path)) for name, source, path in keys}
        for values in page
    ]
    return FeedbackPage(result=result, total_count=rows.count())


def _projection(fields: list[str] | None) -> tuple[list[str], list[tuple[str, str | None, tuple[str, ...]]]]:
    """The columns to select, and each output key with the column and the JSON path its value
    comes from (column None: the project id, which is not stored on the row)."""
    names = ROW_FIELDS if fields is None else fields
    columns, keys, seen = [], [], set()
    for index, name in enumerate(names):
        if name in seen:  # a set, not a scan of `keys`: the check stays linear in the request
            continue
        seen.add(name)
        if name == "project_id":
            keys.append((name, None, ()))
            continue
        ref = FEEDBACK_FIELDS.resolve(name, ("fields", index))
        column = ref.column.field if ref.column is not None else ref.json_field
        if column not in columns:
            columns.append(column)
        keys.append((name, column, ref.path))
    return columns, keys


def _at(value, path: tuple[str, ...]):
    """The value at a path inside a selected JSON document (None where it does not exist), read
    as the database reads paths in filters. Done here rather than in SQL because SQLite loses the
    type of extracted strings."""
    for key in path:
        index = path_index(key)
        if index is None and isinstance(value, dict):
            value = value.get(key)
        elif index is not None and isinstance(value, list) and index < len(value):
            value = value[index]
        else:
            return None
    return value


def _json(value):
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value
