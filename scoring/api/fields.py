"""Strict serializer fields, shared by every API: JSON types are checked, never coerced (a number
is not a string), values the database could not store are refused, and errors carry pydantic's
type names so 422 bodies match the contract."""

import math
import re
import uuid
from datetime import UTC, datetime

from rest_framework import serializers
from rest_framework.fields import empty


class StrictStringField(serializers.Field):
    """A JSON string, taken as is."""

    default_error_messages = {
        "required": "Field required",
        "string_type": "Input should be a valid string",
    }

    def validate_empty_values(self, data):
        # Only absence is "empty"; null goes through to_internal_value and its type check.
        if data is empty:
            return super().validate_empty_values(data)
        if data is None and self.allow_null:
            return True, None
        return False, data

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("string_type")
        return data

    def to_representation(self, value):
        return value


# Caps on list parameters (docs/limits.md lists every one): a request bigger than these is split
# by the client. Counted before any item is looked at, so an oversized list costs nothing.
MAX_LIST_ITEMS = 10_000  # the default of every list parameter (filters, batches, refs)
MAX_SORT_KEYS = 16  # sort_by
MAX_COLUMNS = 1_000  # fields, columns, expand_columns


class StrictListField(serializers.ListField):
    """A JSON array of at most `max_items` items, each checked by `child`."""

    default_error_messages = {
        "required": "Field required",
        "list_type": "Input should be a valid list",
        "too_long": "List should have at most {max_items} items after validation, not {length}",
    }

    def __init__(self, *, max_items: int = MAX_LIST_ITEMS, **kwargs):
        super().__init__(**kwargs)
        self.max_items = max_items

    def validate_empty_values(self, data):
        if data is empty:
            return super().validate_empty_values(data)
        return False, data

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("list_type")
        if len(data) > self.max_items:
            self.fail("too_long", max_items=self.max_items, length=len(data))
        return super().to_internal_value(data)


class StrictObjectSerializer(serializers.Serializer):
    """A JSON object with exactly the declared fields (additionalProperties: false)."""

    forbid_extra = True

    def validate_empty_values(self, data):
        # A body of `null` is "not an object", reported by to_internal_value.
        if data is empty:
            return super().validate_empty_values(data)
        return False, data

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {
                    "non_field_errors": [
                        serializers.ErrorDetail(
                            "Input should be a valid dictionary or object to extract fields from",
                            code="model_attributes_type",
                        )
                    ]
                }
            )
        errors = {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = dict(exc.detail)
            value = None
        if self.forbid_extra:
            for key in data:
                if key not in self.fields:
                    errors[key] = [serializers.ErrorDetail("Extra inputs are not permitted", code="extra_forbidden")]
        if errors:
            raise serializers.ValidationError(errors)
        return value


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ID_LENGTH = 128  # Call.call_id, trace_id, parent_id, thread_id, turn_id
PROJECT_PART_LENGTH = 128  # Project.entity, Project.name
# Deeper values would be stored, but json.dumps, psycopg and the workers recurse per level and
# would hit Python's recursion limit (1000) somewhere down the line.
MAX_JSON_DEPTH = 256


def _text_problem(value: str) -> str | None:
    """Why the database cannot store this string, or None."""
    if "\x00" in value:
        return "String should not contain NUL (\\u0000) characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "String should not contain lone surrogates"
    return None


def unstorable_string(value) -> tuple[tuple, str] | None:
    """(path, message) of the first string, key or value, in a parsed JSON document that the
    database cannot store, or None. Linear, iterative (any depth) and cheap on clean text."""
    stack = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if problem := _text_problem(item):
                return path, problem
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and (problem := _text_problem(key)):
                    return (*path, key), problem
                stack.append(((*path, key), child))
        elif isinstance(item, list):
            stack.extend(((*path, index), child) for index, child in enumerate(item))
    return None


def _json_problem(value) -> tuple[tuple, str, str] | None:
    """(path, message, type) of the first part of a JSON value the database cannot store."""
    stack = [((), value)]  # iterative: a deeply nested value must not exhaust the stack here
    while stack:
        path, item = stack.pop()
        if len(path) > MAX_JSON_DEPTH:
            return (), f"Value should be nested at most {MAX_JSON_DEPTH} levels deep", "json_too_deep"
        if isinstance(item, str) and (problem := _text_problem(item)):
            return path, problem, "string_unstorable"
        if isinstance(item, float) and not math.isfinite(item):
            return path, "Input should be a finite number", "finite_number"
        if isinstance(item, dict):
            for key, child in item.items():
                if problem := _text_problem(key):
                    return (*path, key), problem, "string_unstorable"
                stack.append(((*path, key), child))
        elif isinstance(item, list):
            stack.extend(((*path, index), child) for index, child in enumerate(item))
    return None


class _JsonField(serializers.Field):
    """A field whose JSON type is checked, never coerced; `null` is a type error unless allowed."""

    default_error_messages = {"required": "Field required"}

    def validate_empty_values(self, data):
        if data is None:
            return (True, None) if self.allow_null else (False, data)
        return super().validate_empty_values(data)

    def to_representation(self, value):
        return value


class WeaveStringField(StrictStringField):
    """A JSON string that fits its column."""

    default_error_messages = {
        "string_too_long": "String should have at most {max_length} characters",
        "string_too_short": "String should have at least {min_length} character",
        "string_pattern_mismatch": "String should match pattern '{pattern}'",
        "string_unstorable": "{problem}",
    }

    def __init__(self, *, max_length: int | None = None, min_length: int = 0, pattern: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_length, self.min_length = max_length, min_length
        self.pattern = None if pattern is None else re.compile(pattern)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if problem := _text_problem(value):
            self.fail("string_unstorable", problem=problem)
        if len(value) < self.min_length:
            self.fail("string_too_short", min_length=self.min_length)
        if self.max_length is not None and len(value) > self.max_length:
            self.fail("string_too_long", max_length=self.max_length)
        if self.pattern is not None and not self.pattern.fullmatch(value):
            self.fail("string_pattern_mismatch", pattern=self.pattern.pattern)
        return value


class ProjectIdField(WeaveStringField):
    """`entity/project`, each part short enough for its column (the shape itself is checked
    where the project is looked up)."""

    default_error_messages = {"string_too_long": "Entity and project names should have at most {max_length} characters"}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if any(len(part) > PROJECT_PART_LENGTH for part in value.split("/")):
            self.fail("string_too_long", max_length=PROJECT_PART_LENGTH)
        return value


class JsonValueField(_JsonField):
    """Any JSON value the database can store (`Any` in Weave's models)."""

    def to_internal_value(self, data):
        if (problem := _json_problem(data)) is not None:
            path, message, type_ = problem
            detail = [serializers.ErrorDetail(message, code=type_)]
            for key in reversed(path):
                detail = {key: detail}
            raise serializers.ValidationError(detail)
        return data


class JsonObjectField(JsonValueField):
    """A JSON object (`dict[str, Any]` in Weave's models)."""

    default_error_messages = {"dict_type": "Input should be a valid dictionary"}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("dict_type")
        return super().to_internal_value(data)


class StrictIntegerField(_JsonField):
    """A JSON integer that fits a 64-bit column, optionally within bounds; booleans and floats
    are not integers."""

    default_error_messages = {
        "int_type": "Input should be a valid integer",
        "int_range": "Input should fit in a signed 64-bit integer",
        "greater_than_equal": "Input should be greater than or equal to {min_value}",
        "less_than_equal": "Input should be less than or equal to {max_value}",
    }

    def __init__(self, *, min_value: int | None = None, max_value: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.min_value, self.max_value = min_value, max_value

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("int_type")
        if not INT64_MIN <= data <= INT64_MAX:
            self.fail("int_range")
        if self.min_value is not None and data < self.min_value:
            self.fail("greater_than_equal", min_value=self.min_value)
        if self.max_value is not None and data > self.max_value:
            self.fail("less_than_equal", max_value=self.max_value)
        return data


class StrictBooleanField(_JsonField):
    """A JSON boolean."""

    default_error_messages = {"bool_type": "Input should be a valid boolean"}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("bool_type")
        return data


class IsoDateTimeField(_JsonField):
    """An ISO 8601 datetime string, as an aware UTC datetime (a naive one is taken as UTC)."""

    default_error_messages = {
        "datetime_type": "Input should be a valid datetime string (ISO 8601)",
        "datetime_from_date_parsing": "Input should be a valid ISO 8601 datetime: {reason}",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("datetime_type")
        try:
            value = datetime.fromisoformat(data)
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.astimezone(UTC)
        except (ValueError, OverflowError) as exc:
            self.fail("datetime_from_date_parsing", reason=str(exc))


class WeaveObjectSerializer(StrictObjectSerializer):
    """A JSON object read as Weave's pydantic models read it: unknown keys are ignored."""

    forbid_extra = False


class UUIDStringField(_JsonField):
    """A UUID spelled as a JSON string."""

    default_error_messages = {
        "string_type": "Input should be a valid string",
        "uuid_parsing": "Input should be a valid UUID",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("string_type")
        try:
            return uuid.UUID(data)
        except ValueError:
            self.fail("uuid_parsing")


class LiteralStringField(StrictStringField):
    """One of a few strings (pydantic's Literal)."""

    default_error_messages = {**StrictStringField.default_error_messages, "literal_error": "Input should be {choices}"}

    def __init__(self, *, choices: tuple[str, ...], **kwargs):
        super().__init__(**kwargs)
        self.choices = choices

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if data not in self.choices:
            self.fail("literal_error", choices=" or ".join(repr(c) for c in self.choices))
        return data


class NullableListField(StrictListField):
    """A JSON array, or null (Optional[list] in Weave's models)."""

    def validate_empty_values(self, data):
        if data is None:
            return True, None
        return super().validate_empty_values(data)


class SortBySerializer(WeaveObjectSerializer):
    """Weave's SortBy: one key of a query's order."""

    field = StrictStringField()
    direction = LiteralStringField(choices=("asc", "desc"))


def sort_by_field() -> NullableListField:
    """A request's `sort_by`: Weave's list of SortBy, at most MAX_SORT_KEYS keys."""
    return NullableListField(child=SortBySerializer(), max_items=MAX_SORT_KEYS, required=False)
