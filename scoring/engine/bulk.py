"""Bulk writes for the worker's hot path (PostgreSQL): a batch of rows travels as one JSON document
and is inserted by `INSERT ... SELECT FROM jsonb_populate_recordset(...)`, which can sit in a
larger statement, so that a whole batch of results is one round trip. Encoding one document costs
a fraction of adapting thousands of separate parameters. No model instance is built: a row is what
the model's constructor would take, and the fields left out get the defaults the model gives."""

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache

import orjson
import psycopg
from django.db import connection
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone


@cache
def _insertable(model) -> tuple:
    fields = tuple(f for f in model._meta.concrete_fields if not isinstance(f, AutoFieldMixin))
    if any(f.attname != f.column for f in fields):
        raise NotImplementedError(f"{model.__name__}: rows are keyed by attname, which must be the column name")
    return fields


@cache
def _defaults(model) -> tuple[tuple[str, Callable | None], ...]:
    """(attname, what makes its default) of each field that has one; None: the time of writing."""
    defaults = []
    for field in _insertable(model):
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            defaults.append((field.attname, None))
        elif field.has_default():
            defaults.append((field.attname, field.get_default))
    return tuple(defaults)


def json_rows(model, rows: Iterable[dict]) -> str:
    """The rows (field attname -> value) as one JSON array for `json_insert`, with every
    insertable field present: a missing one takes the model's default, as Model(...) would.
    Encoded by orjson (datetimes and UUIDs natively, an order of magnitude faster than json); the
    values are JSON already read from the database and built-in scorers' outputs, so there is no
    NaN to lose (orjson would write null)."""
    now = timezone.now()
    defaults = _defaults(model)
    complete = []
    for row in rows:
        missing = {name: now if make is None else make() for name, make in defaults if name not in row}
        complete.append({**row, **missing} if missing else row)
    try:
        return orjson.dumps(complete).decode()
    except TypeError:  # an integer beyond 64 bits, which the standard library writes exactly
        return json.dumps(complete, default=_plain)


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_insert(model, *, param: str, where: str) -> str:
    """`INSERT INTO <model's table> ... SELECT ... FROM jsonb_populate_recordset(...)` of the rows
    in the parameter `param` (from json_rows), keeping those for which `where` holds (the row is
    `r`, say `r.task_id IN (SELECT id FROM finished)`)."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(f.column) for f in _insertable(model))
    return (
        f"INSERT INTO {table} ({columns}) SELECT {columns} "
        f"FROM jsonb_populate_recordset(NULL::{table}, %({param})s::jsonb) AS r WHERE {where}"
    )


@contextmanager
def hot_cursor() -> Iterator[psycopg.Cursor]:
    """A cursor for the worker's per-batch statements; run them with `prepare=True`. Parameters
    travel apart from the SQL (Django's PostgreSQL cursors inline them into its text), and a
    statement is parsed and planned once per connection rather than per batch. Errors are
    Django's, as usual."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor
