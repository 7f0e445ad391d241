"""Weave's query language (`{"$expr": ...}`, a subset of MongoDB's aggregation operators) turned
into a Django `Q`, and Weave's sort_by into order_by(), over a declared table of fields. The
database does all the filtering; nothing is evaluated in Python. What cannot be translated is a `QueryError`
naming the operator or field and where it sits in the request body.

The same semantics on PostgreSQL and SQLite:
- `$getField` names a column, or a dotted path into a JSON column (`payload.output.score`); a
  path part that is a plain non-negative integer indexes an array (so object keys that look
  like integers cannot be addressed, as in Weave).
- A comparison takes one field and one `$literal`, in either order. On a JSON path `$eq` and
  `$in` compare JSON values (type and value); `$gt`, `$gte`, `$lt` and `$lte` only match values
  of the literal's type (numbers with numbers, strings with strings).
- `$contains` is a substring match on the value's text, never JSON containment.
- A missing or null value matches no comparison (except `$eq` with null), so `$not` of a
  comparison matches it, as in MongoDB.
"""

import operator
import uuid
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce

from django.db import NotSupportedError
from django.db.models import ExpressionWrapper, F, JSONField, OrderBy, Q, TextField
from django.db.models.fields.json import KeyTextTransform, KeyTransform, compile_json_path
from django.db.models.functions import Cast
from django.db.models.lookups import Contains, IContains, Lookup

from scoring.errors import RequestValidationError, error

MAX_DEPTH = 32  # nesting of operations
MAX_CONDITIONS = 1_000  # comparisons in one query
MAX_VALUES = 10_000  # literals in one query: far below every backend's parameter limit
MAX_SORT_KEYS = 32
INT64 = (-(2**63), 2**63 - 1)

COMPARISONS = {"$eq": "exact", "$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
# `literal < field` is `field > literal`.
FLIPPED = {"exact": "exact", "gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}
LOGICAL = ("$and", "$or", "$not")
SUPPORTED = (*LOGICAL, *COMPARISONS, "$in", "$contains")
OPERANDS = ("$getField", "$literal")

# A condition that is never / always true, without special cases in Q's combinators (an empty
# Q() is dropped by `|`, so it cannot stand for "true").
NOTHING = Q(pk__in=[])
EVERYTHING = ~Q(pk__in=[])


class QueryError(RequestValidationError):
    """A query that cannot be translated: `loc` is its place in the request body (without "body")."""

    def __init__(self, loc, msg: str, type_: str = "value_error"):
        super().__init__([error(("body", *loc), msg, type_)])
        self.loc = tuple(loc)
        self.msg = msg
        self.type = type_


@dataclass(frozen=True)
class Column:
    """A column a query may name: its model field, its type (text, uuid, datetime), nullability."""

    field: str
    type: str = "text"
    nullable: bool = False


@dataclass(frozen=True)
class QueryFields:
    """What a query may name: columns by their API name, and JSON columns addressed by dotted paths."""

    columns: Mapping[str, Column]
    json_columns: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, name, loc) -> "FieldRef":
        if not isinstance(name, str):
            raise QueryError(loc, "Input should be a valid string", "string_type")
        if name in self.columns:
            return FieldRef(name, column=self.columns[name])
        root, dot, rest = name.partition(".")
        if root in self.json_columns:
            path = tuple(rest.split(".")) if dot else ()
            for part in path:
                if not part or "\x00" in part or _is_noncanonical_int(part):
                    raise QueryError(loc, f"Invalid path {name!r}: parts must be keys or array indexes", "value_error")
            return FieldRef(name, json_field=self.json_columns[root], path=path)
        known = ", ".join([*self.columns, *(f"{c}.<path>" for c in self.json_columns)])
        raise QueryError(loc, f"Unsupported field {name!r}; supported: {known}", "unsupported_field")


@dataclass(frozen=True)
class FieldRef:
    """A resolved field: a column, or a JSON column and a key path inside it (empty: all of it)."""

    name: str
    column: Column | None = None
    json_field: str | None = None
    path: tuple[str, ...] = ()

    @property
    def is_json_root(self) -> bool:
        return self.json_field is not None and not self.path

    def expression(self):
        """The value itself: the column, or the JSON value at the path."""
        if self.column is not None:
            return F(self.column.field)
        expr = self._json()
        for key in self.path:
            expr = KeyTransform(key, expr)
        return expr

    def text_expression(self):
        """The value as text, for substring matching (a JSON value's text, not the JSON)."""
        if self.column is not None:
            return ExpressionWrapper(F(self.column.field), output_field=TextField())
        if not self.path:
            return Cast(F(self.json_field), TextField())
        expr = self._json()
        for key in self.path[:-1]:
            expr = KeyTransform(key, expr)
        return KeyTextTransform(self.path[-1], expr)

    def _json(self):
        # Typed before resolution, so that lookups built on it prepare their values as JSON.
        return ExpressionWrapper(F(self.json_field), output_field=JSONField())


class JSONTypeIs(Lookup):
    """The JSON value at a key path is of a type ("number" or "string"): the guard that keeps
    ordering comparisons between values of one type, as both backends order mixed types differently."""

    lookup_name = "json_type_is"
    prepare_rhs = False
    SQLITE_TYPES = {"number": ("integer", "real"), "string": ("text",)}

    def as_sql(self, compiler, connection):
        raise NotSupportedError(f"JSON type checks are not implemented for {connection.vendor}")

    def as_postgresql(self, compiler, connection):
        lhs, params = compiler.compile(self.lhs)
        return f"(jsonb_typeof({lhs}) = %s)", (*params, self.rhs)

    def as_sqlite(self, compiler, connection):
        json_sql, json_params, keys = self.lhs.preprocess_lhs(compiler, connection)
        types = self.SQLITE_TYPES[self.rhs]
        placeholders = ", ".join("%s" for _ in types)
        return f"(JSON_TYPE({json_sql}, %s) IN ({placeholders}))", (*json_params, compile_json_path(keys), *types)


class TextContains(Contains):
    """A case-sensitive substring match, on SQLite too (whose LIKE ignores ASCII case)."""

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = compiler.compile(self.lhs)
        return f"(INSTR({lhs}, %s) > 0)", (*lhs_params, self.rhs)


@dataclass(frozen=True)
class _Predicate:
    """A comparison: `match` on non-null values (None: none match), whether null values match,
    and the test for null (None when the field cannot be null)."""

    match: Q | None
    matches_null: bool
    isnull: Q | None

    def positive(self) -> Q:
        parts = [self.match] if self.match is not None else []
        if self.matches_null and self.isnull is not None:
            parts.append(self.isnull)
        return reduce(operator.or_, parts) if parts else NOTHING

    def negative(self) -> Q:
        if self.matches_null:
            q = ~self.match if self.match is not None else EVERYTHING
            return q & ~self.isnull if self.isnull is not None else q
        if self.match is None:
            return EVERYTHING
        # A null value fails the comparison, so its negation holds for it.
        return ~self.match | self.isnull if self.isnull is not None else ~self.match


def query_to_q(query, fields: QueryFields, *, loc=("query",)) -> Q | None:
    """`{"$expr": <operation>}` as a Q; None for no query."""
    if query is None:
        return None
    if not isinstance(query, dict):
        raise QueryError(loc, "Input should be a valid dictionary", "dict_type")
    for key in query:
        if key != "$expr":
            raise QueryError((*loc, key), "Extra inputs are not permitted", "extra_forbidden")
    if "$expr" not in query:
        raise QueryError((*loc, "$expr"), "Field required", "missing")
    return _Translator(fields).condition(query["$expr"], (*loc, "$expr"), negate=False, depth=0)


def order_by(sort_by, fields: QueryFields, *, loc=("sort_by",)) -> list[OrderBy]:
    """`[{field, direction}]` as order_by() expressions; nulls sort last either way."""
    if sort_by and len(sort_by) > MAX_SORT_KEYS:
        raise QueryError(loc, f"Sort by at most {MAX_SORT_KEYS} fields", "too_long")
    ordering = []
    for index, item in enumerate(sort_by or []):
        ref = fields.resolve(item["field"], (*loc, index, "field"))
        if ref.is_json_root:
            raise QueryError(
                (*loc, index, "field"), "Sort by a path inside the JSON, not all of it", "unsupported_field"
            )
        expr = ref.expression()
        ordering.append(expr.desc(nulls_last=True) if item["direction"] == "desc" else expr.asc(nulls_last=True))
    return ordering


class _Translator:
    def __init__(self, fields: QueryFields):
        self.fields = fields
        self.conditions = 0
        self.values = 0

    def condition(self, node, loc, *, negate: bool, depth: int) -> Q:
        if depth >= MAX_DEPTH:
            raise QueryError(loc, f"Query is nested deeper than {MAX_DEPTH} operations", "value_error")
        op, args = self._operation(node, loc)
        if op == "$and" or op == "$or":
            if not isinstance(args, list):
                raise QueryError((*loc, op), "Input should be a valid list", "list_type")
            if not args:
                return EVERYTHING if (op == "$and") != negate else NOTHING
            parts = [self.condition(arg, (*loc, op, i), negate=negate, depth=depth + 1) for i, arg in enumerate(args)]
            # De Morgan: negation is pushed down to the comparisons, where nulls are handled.
            combine = operator.and_ if (op == "$and") != negate else operator.or_
            return reduce(combine, parts)
        if op == "$not":
            if not isinstance(args, list) or len(args) != 1:
                raise QueryError((*loc, op), "$not takes a list of one operation", "value_error")
            return self.condition(args[0], (*loc, op, 0), negate=not negate, depth=depth + 1)
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise QueryError(loc, f"Query has more than {MAX_CONDITIONS} conditions", "value_error")
        if op in COMPARISONS:
            predicate = self._comparison(op, args, (*loc, op))
        elif op == "$in":
            predicate = self._in(args, (*loc, op))
        else:
            predicate = self._contains(args, (*loc, op))
        return predicate.negative() if negate else predicate.positive()

    def _operation(self, node, loc) -> tuple[str, object]:
        if not isinstance(node, dict):
            raise QueryError(loc, "Input should be a valid dictionary (an operation)", "dict_type")
        if len(node) != 1:
            raise QueryError(loc, "An operation is an object with exactly one operator key", "value_error")
        ((op, args),) = node.items()
        if op not in SUPPORTED:
            what = "an operand, not an operation" if op in OPERANDS else "not supported"
            raise QueryError(
                (*loc, op),
                f"Unsupported operator {op!r} here ({what}); supported: {', '.join(SUPPORTED)}",
                "unsupported_operator",
            )
        return op, args

    def _operand(self, node, loc):
        """("field", FieldRef) or ("literal", value)."""
        if not isinstance(node, dict) or len(node) != 1:
            raise QueryError(loc, "An operand is {'$getField': <name>} or {'$literal': <value>}", "value_error")
        ((key, value),) = node.items()
        if key == "$getField":
            return "field", self.fields.resolve(value, (*loc, key))
        if key == "$literal":
            self._check_literal(value, (*loc, key))
            return "literal", value
        raise QueryError(
            (*loc, key), f"Unsupported operand {key!r}; supported: $getField, $literal", "unsupported_operator"
        )

    def _check_literal(self, value, loc, *, count: int = 1) -> None:
        # Iterative, so a deeply nested literal cannot exhaust the stack.
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str) and "\x00" in item:
                raise QueryError(loc, "Strings cannot contain NUL characters", "value_error")
            if isinstance(item, int) and not isinstance(item, bool) and not INT64[0] <= item <= INT64[1]:
                raise QueryError(loc, "Integers must fit in 64 bits", "value_error")
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        self.values += count
        if self.values > MAX_VALUES:
            raise QueryError(loc, f"Query has more than {MAX_VALUES} literal values", "value_error")

    def _field_and_literal(self, op, args, loc) -> tuple[FieldRef, object, bool]:
        """The field and the literal of a comparison, and whether they came in reverse order."""
        if not isinstance(args, list) or len(args) != 2:
            raise QueryError(loc, f"{op} takes a list of two operands", "value_error")
        (kind0, a), (kind1, b) = self._operand(args[0], (*loc, 0)), self._operand(args[1], (*loc, 1))
        if kind0 == kind1:
            raise QueryError(loc, f"{op} compares one $getField with one $literal", "unsupported_operand")
        return (a, b, False) if kind0 == "field" else (b, a, True)

    def _comparison(self, op, args, loc) -> _Predicate:
        ref, value, flipped = self._field_and_literal(op, args, loc)
        lookup = COMPARISONS[op]
        if flipped:
            lookup = FLIPPED[lookup]
        literal_loc = (*loc, 0 if flipped else 1, "$literal")
        if value is None:
            if lookup != "exact":
                raise QueryError(literal_loc, f"{op} cannot compare with null", "value_error")
            return _Predicate(None, True, self._isnull(ref))
        if ref.is_json_root:
            raise QueryError((*loc, 1 if flipped else 0), f"{op} needs a path inside {ref.name!r}", "unsupported_field")
        if ref.column is not None:
            coerced = self._column_value(ref, value, literal_loc)
            return _Predicate(Q(**{f"{ref.column.field}__{lookup}": coerced}), False, self._isnull(ref))
        lhs = ref.expression()
        if lookup == "exact":
            return _Predicate(Q(lhs.get_lookup("exact")(lhs, value)), False, self._isnull(ref))
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise QueryError(literal_loc, f"{op} on a JSON path compares with a number or a string", "value_error")
        kind = "string" if isinstance(value, str) else "number"
        match = Q(JSONTypeIs(lhs, kind)) & Q(lhs.get_lookup(lookup)(lhs, value))
        return _Predicate(match, False, self._isnull(ref))

    def _in(self, args, loc) -> _Predicate:
        if not isinstance(args, list) or len(args) != 2:
            raise QueryError(loc, "$in takes [<operand>, [<literal>, ...]]", "value_error")
        kind, ref = self._operand(args[0], (*loc, 0))
        if kind != "field":
            raise QueryError((*loc, 0), "$in tests a $getField against a list of $literal", "unsupported_operand")
        values = self._in_values(args[1], (*loc, 1))
        present = [v for v in values if v is not None]
        matches_null = len(present) != len(values)
        if not present:
            return _Predicate(None, matches_null, self._isnull(ref))
        if ref.is_json_root:
            raise QueryError((*loc, 0), f"$in needs a path inside {ref.name!r}", "unsupported_field")
        if ref.column is not None:
            coerced = [self._column_value(ref, v, (*loc, 1)) for v in present]
            return _Predicate(Q(**{f"{ref.column.field}__in": coerced}), matches_null, self._isnull(ref))
        lhs = ref.expression()
        return _Predicate(Q(lhs.get_lookup("in")(lhs, present)), matches_null, self._isnull(ref))

    def _in_values(self, node, loc) -> list:
        # Weave's shape is a list of operands; a {"$literal": [...]} list is accepted too.
        if isinstance(node, dict) and set(node) == {"$literal"} and isinstance(node["$literal"], list):
            self._check_literal(node["$literal"], (*loc, "$literal"), count=len(node["$literal"]))
            return list(node["$literal"])
        if not isinstance(node, list):
            raise QueryError(loc, "Input should be a valid list of $literal operands", "list_type")
        values = []
        for index, item in enumerate(node):
            kind, value = self._operand(item, (*loc, index))
            if kind != "literal":
                raise QueryError((*loc, index), "$in lists $literal operands only", "unsupported_operand")
            values.append(value)
        return values

    def _contains(self, spec, loc) -> _Predicate:
        if not isinstance(spec, dict):
            raise QueryError(loc, "Input should be a valid dictionary", "dict_type")
        for key in spec:
            if key not in ("input", "substr", "case_insensitive"):
                raise QueryError((*loc, key), "Extra inputs are not permitted", "extra_forbidden")
        for key in ("input", "substr"):
            if key not in spec:
                raise QueryError((*loc, key), "Field required", "missing")
        case_insensitive = spec.get("case_insensitive")
        if case_insensitive is not None and not isinstance(case_insensitive, bool):
            raise QueryError((*loc, "case_insensitive"), "Input should be a valid boolean", "bool_type")
        kind, ref = self._operand(spec["input"], (*loc, "input"))
        if kind != "field":
            raise QueryError((*loc, "input"), "$contains searches a $getField", "unsupported_operand")
        kind, substr = self._operand(spec["substr"], (*loc, "substr"))
        if kind != "literal" or not isinstance(substr, str):
            raise QueryError((*loc, "substr"), "$contains looks for a string $literal", "value_error")
        if ref.column is not None and ref.column.type not in ("text", "uuid"):
            raise QueryError((*loc, "input"), f"$contains does not apply to {ref.name!r}", "unsupported_field")
        lookup = IContains if case_insensitive else TextContains
        if ref.column is not None and ref.column.type == "uuid":
            # Django's UUID lookups know how each backend spells a UUID as text.
            match = Q(**{f"{ref.column.field}__{lookup.lookup_name}": substr})
        else:
            match = Q(lookup(ref.text_expression(), substr))
        return _Predicate(match, False, self._isnull(ref))

    def _isnull(self, ref: FieldRef) -> Q | None:
        if ref.column is not None:
            return Q(**{f"{ref.column.field}__isnull": True}) if ref.column.nullable else None
        if not ref.path:
            return None
        lhs = ref.expression()
        # Missing (at any level of the path) or a JSON null.
        return Q(lhs.get_lookup("isnull")(lhs, True)) | Q(lhs.get_lookup("exact")(lhs, None))

    def _column_value(self, ref: FieldRef, value, loc):
        column = ref.column
        if column.type == "uuid":
            if isinstance(value, str):
                with suppress(ValueError):
                    return uuid.UUID(value)
            raise QueryError(loc, f"{ref.name!r} compares with a UUID string", "uuid_parsing")
        if column.type == "datetime":
            if isinstance(value, str):
                with suppress(ValueError):
                    parsed = datetime.fromisoformat(value)
                    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
            raise QueryError(loc, f"{ref.name!r} compares with an ISO 8601 datetime", "datetime_parsing")
        if not isinstance(value, str):
            raise QueryError(loc, f"{ref.name!r} compares with a string", "string_type")
        return value


def path_index(part: str) -> int | None:
    """The array index a path part stands for (as the database reads it), or None for a key."""
    try:
        return int(part)
    except ValueError:
        return None


def _is_noncanonical_int(part: str) -> bool:
    # The database takes anything int() reads as an array index: only plain non-negative
    # numbers mean the same on every backend ("-1", " 1", "1_0", "01" do not).
    index = path_index(part)
    return index is not None and (index < 0 or part != str(index))
