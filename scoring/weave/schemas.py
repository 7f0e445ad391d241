"""Weave's CallSchema: which columns a call start and a call end own, and a call rendered as Weave
returns it. Every route that renders a call (call/read, calls/stream_query, what remote scorers
receive) renders it here."""

from collections.abc import Mapping
from datetime import UTC, datetime

# The columns each kind of request owns; an upsert of one kind never touches the other's.
START_FIELDS = (
    "op_name",
    "display_name",
    "trace_id",
    "parent_id",
    "thread_id",
    "turn_id",
    "started_at",
    "attributes",
    "inputs",
    "wb_user_id",
    "wb_run_id",
    "wb_run_step",
)
END_FIELDS = ("ended_at", "exception", "output", "summary", "wb_run_step_end")
COMPLETE_FIELDS = START_FIELDS + END_FIELDS
# A Call row's columns that make up its CallSchema, in Weave's order after id and project_id.
CALL_SCHEMA_COLUMNS = (*START_FIELDS, *END_FIELDS, "deleted_at")


def iso(value: datetime | None) -> str | None:
    """A time as Weave writes it: ISO 8601 in UTC, with a Z."""
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def call_schema(project_id: str, values: Mapping) -> dict:
    """The call in Weave's CallSchema, from a mapping of Call columns (`call_id` and those of
    CALL_SCHEMA_COLUMNS it has)."""
    row = {"id": values["call_id"], "project_id": project_id}
    for name in CALL_SCHEMA_COLUMNS:
        if name in values:
            value = values[name]
            row[name] = iso(value) if isinstance(value, datetime) else value
    return row
