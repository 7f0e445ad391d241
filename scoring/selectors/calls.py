"""Reading calls (`POST /call/read`, `/calls/stream_query`, `/calls/query_stats`): one project's calls,
filtered by Weave's CallsFilter and its query language, sorted and paged by the database, read
in chunks so that a long stream never holds every call in memory."""

from collections.abc import Iterator

from django.db.models import F, Q

from scoring.models import Call
from scoring.selectors.feedback import feedback_query
from scoring.selectors.projects import project_for_read
from scoring.weave.query import Column, QueryError, QueryFields, order_by, query_to_q
from scoring.weave.refs import call_ref_uri
from scoring.weave.schemas import CALL_SCHEMA_COLUMNS, call_schema

CHUNK = 500
CALL_FIELDS = QueryFields(
    columns={
        "id": Column("call_id"),
        "op_name": Column("op_name"),
        "display_name": Column("display_name", nullable=True),
        "trace_id": Column("trace_id"),
        "parent_id": Column("parent_id", nullable=True),
        "thread_id": Column("thread_id", nullable=True),
        "turn_id": Column("turn_id", nullable=True),
        "started_at": Column("started_at", "datetime", nullable=True),
        "ended_at": Column("ended_at", "datetime", nullable=True),
        "exception": Column("exception", nullable=True),
        "wb_user_id": Column("wb_user_id", nullable=True),
        "wb_run_id": Column("wb_run_id", nullable=True),
    },
    json_columns={"inputs": "inputs", "output": "output", "attributes": "attributes", "summary": "summary"},
)
# CallsFilter's list fields and the columns they match.
FILTER_COLUMNS = {
    "call_ids": "call_id",
    "trace_ids": "trace_id",
    "parent_ids": "parent_id",
    "thread_ids": "thread_id",
    "turn_ids": "turn_id",
    "wb_run_ids": "wb_run_id",
    "wb_user_ids": "wb_user_id",
}
ROW_COLUMNS = ("call_id", *CALL_SCHEMA_COLUMNS)
DEFAULT_ORDER = (F("started_at").asc(nulls_last=True), F("call_id").asc())


def calls_query(
    *,
    user,
    project_id: str,
    call_filter: dict | None = None,
    query: dict | None = None,
    sort_by: list[dict] | None = None,
    limit: int | None = None,
    offset: int | None = None,
    include_feedback: bool = False,
) -> Iterator[dict]:
    """The matching calls in Weave's CallSchema, as an iterator that reads the database chunk by
    chunk. Everything that can fail (access, filter, query, sort) fails here, before the first
    row: a stream that has started is never cut by an error. With `include_feedback`, each call's
    feedback rows are in its `summary.weave.feedback`, as Weave returns them."""
    calls = _calls(user=user, project_id=project_id, call_filter=call_filter, query=query)
    ordering = [*order_by(sort_by, CALL_FIELDS), *DEFAULT_ORDER]
    if calls is None:
        return iter(())
    start = offset or 0
    page = calls.order_by(*ordering).values(*ROW_COLUMNS)
    page = page[start:] if limit is None else page[start : start + limit]
    return _rows(user=user, project_id=project_id, page=page, include_feedback=include_feedback)


def calls_count(
    *, user, project_id: str, call_filter: dict | None = None, query: dict | None = None, limit: int | None = None
) -> int:
    """How many calls match (at most `limit`, when given)."""
    calls = _calls(user=user, project_id=project_id, call_filter=call_filter, query=query)
    if calls is None:
        return 0
    return calls.count() if limit is None else calls.order_by()[:limit].count()


def _calls(*, user, project_id: str, call_filter: dict | None, query: dict | None):
    project = project_for_read(user=user, project_id=project_id)
    condition = query_to_q(query, CALL_FIELDS)
    filter_q = _filter_q(call_filter or {})
    if project is None:
        return None
    calls = Call.objects.filter(project=project, deleted_at__isnull=True).filter(filter_q)
    return calls if condition is None else calls.filter(condition)


def _filter_q(spec: dict) -> Q:
    q = Q()
    for key, column in FILTER_COLUMNS.items():
        if spec.get(key) is not None:
            q &= Q(**{f"{column}__in": spec[key]})
    if spec.get("op_names") is not None:
        # `<op ref without version>:*` matches every version of an op, as in Weave.
        names = Q(op_name__in=[name for name in spec["op_names"] if not name.endswith(":*")])
        for name in spec["op_names"]:
            if name.endswith(":*"):
                names |= Q(op_name__startswith=name[:-1])
        q &= names
    if spec.get("trace_roots_only"):
        q &= Q(parent_id__isnull=True) | Q(parent_id="")
    for key in ("input_refs", "output_refs"):
        if spec.get(key):
            raise QueryError(
                ("filter", key), f"Filtering on {key} is not supported by this server", "unsupported_field"
            )
    return q


def _rows(*, user, project_id: str, page, include_feedback: bool) -> Iterator[dict]:
    chunk = []
    for values in page.iterator(chunk_size=CHUNK):
        chunk.append(call_schema(project_id, values))
        if len(chunk) == CHUNK:
            yield from _with_feedback(user, project_id, chunk) if include_feedback else chunk
            chunk = []
    if chunk:
        yield from _with_feedback(user, project_id, chunk) if include_feedback else chunk


def _with_feedback(user, project_id: str, calls: list[dict]) -> list[dict]:
    refs = {call_ref_uri(project_id, call["id"]): call for call in calls}
    query = {"$expr": {"$in": [{"$getField": "weave_ref"}, [{"$literal": ref} for ref in refs]]}}
    page = feedback_query(
        user=user, project_id=project_id, query=query, sort_by=[{"field": "created_at", "direction": "asc"}]
    )
    feedback: dict[str, list[dict]] = {ref: [] for ref in refs}
    for row in page.result:
        feedback[row["weave_ref"]].append(row)
    for ref, call in refs.items():
        summary = call["summary"] if isinstance(call["summary"], dict) else {}
        weave = summary.get("weave") if isinstance(summary.get("weave"), dict) else {}
        call["summary"] = {**summary, "weave": {**weave, "feedback": feedback[ref]}}
    return calls


def call_read(*, user, project_id: str, call_id: str) -> dict | None:
    """The call in Weave's CallSchema, or None if it (or its project) does not exist."""
    project = project_for_read(user=user, project_id=project_id)
    if project is None:
        return None
    values = Call.objects.filter(project=project, call_id=call_id).values(*ROW_COLUMNS).first()
    return None if values is None else call_schema(project_id, values)
