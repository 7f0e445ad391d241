"""Weave's call endpoints: `POST /call/start`, `/call/end`, `/call/upsert_batch` and `/call/read`.

Bodies are read as Weave's pydantic models read them: unknown keys are ignored (the weave client
sends extras such as `otel_dump`), known keys are type-checked without coercion. The fields below
also refuse what the database could not store (NUL characters, lone surrogates, non-finite
numbers, over-long ids), so that such input is a 422 and never a 500. The object endpoints use
them too."""

import math
import re
from datetime import UTC, datetime

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.apis.fields import StrictListField, StrictObjectSerializer, StrictStringField
from scoring.services.calls import call_end, call_read, call_start, calls_upsert_batch

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
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "String should not contain lone surrogates"
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
    """A JSON integer that fits a 64-bit column; booleans and floats are not integers."""

    default_error_messages = {
        "int_type": "Input should be a valid integer",
        "int_range": "Input should fit in a signed 64-bit integer",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("int_type")
        if not INT64_MIN <= data <= INT64_MAX:
            self.fail("int_range")
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


class StartedCallSerializer(WeaveObjectSerializer):
    """Weave's StartedCallSchemaForInsert."""

    project_id = ProjectIdField()
    id = WeaveStringField(required=False, allow_null=True, min_length=1, max_length=ID_LENGTH)
    op_name = WeaveStringField()
    display_name = WeaveStringField(required=False, allow_null=True)
    trace_id = WeaveStringField(required=False, allow_null=True, min_length=1, max_length=ID_LENGTH)
    parent_id = WeaveStringField(required=False, allow_null=True, max_length=ID_LENGTH)
    thread_id = WeaveStringField(required=False, allow_null=True, max_length=ID_LENGTH)
    turn_id = WeaveStringField(required=False, allow_null=True, max_length=ID_LENGTH)
    started_at = IsoDateTimeField()
    attributes = JsonObjectField()
    inputs = JsonObjectField()
    wb_user_id = WeaveStringField(required=False, allow_null=True)  # type-checked, then ignored
    wb_run_id = WeaveStringField(required=False, allow_null=True, max_length=256)
    wb_run_step = StrictIntegerField(required=False, allow_null=True)


class EndedCallSerializer(WeaveObjectSerializer):
    """Weave's EndedCallSchemaForInsert, plus the `trace_id` and `started_at` newer clients send."""

    project_id = ProjectIdField()
    id = WeaveStringField(min_length=1, max_length=ID_LENGTH)
    ended_at = IsoDateTimeField()
    exception = WeaveStringField(required=False, allow_null=True)
    output = JsonValueField(required=False, allow_null=True)
    summary = JsonObjectField()
    wb_run_step_end = StrictIntegerField(required=False, allow_null=True)
    trace_id = WeaveStringField(required=False, allow_null=True, min_length=1, max_length=ID_LENGTH)
    started_at = IsoDateTimeField(required=False, allow_null=True)


class CallStartApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        start = StartedCallSerializer()

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(call_start(user=request.user, start=serializer.validated_data["start"]))


class CallEndApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        end = EndedCallSerializer()

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        call_end(user=request.user, end=serializer.validated_data["end"])
        return Response({})


class CallBatchItemSerializer(WeaveObjectSerializer):
    """`{mode: "start", req: {start}}` or `{mode: "end", req: {end}}`, as `(mode, start or end)`.
    Without `mode`, the key inside `req` decides, as Weave's union of the two models does."""

    REQUESTS = {"start": CallStartApi.InputSerializer, "end": CallEndApi.InputSerializer}

    def to_internal_value(self, data):
        super().to_internal_value(data)  # only checks that it is an object
        req = data.get("req")
        mode = data.get("mode")
        if "mode" not in data and isinstance(req, dict):
            mode = "end" if "end" in req and "start" not in req else "start"
        if not isinstance(mode, str) or mode not in self.REQUESTS:
            raise serializers.ValidationError(
                {"mode": [serializers.ErrorDetail("Input should be 'start' or 'end'", code="literal_error")]}
            )
        if "req" not in data:
            raise serializers.ValidationError({"req": [serializers.ErrorDetail("Field required", code="required")]})
        serializer = self.REQUESTS[mode](data=req)
        if not serializer.is_valid():
            raise serializers.ValidationError({"req": serializer.errors})
        return mode, serializer.validated_data[mode]


class CallUpsertBatchApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        batch = StrictListField(child=CallBatchItemSerializer())

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response({"res": calls_upsert_batch(user=request.user, batch=serializer.validated_data["batch"])})


class CallReadApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        project_id = ProjectIdField()
        id = WeaveStringField()
        include_costs = StrictBooleanField(required=False, allow_null=True)
        include_storage_size = StrictBooleanField(required=False, allow_null=True)
        include_total_storage_size = StrictBooleanField(required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        """Weave's CallSchema."""

        id = serializers.CharField(source="call_id")
        project_id = serializers.CharField(source="project.project_id")
        op_name = serializers.CharField()
        display_name = serializers.CharField()
        trace_id = serializers.CharField()
        parent_id = serializers.CharField()
        thread_id = serializers.CharField()
        turn_id = serializers.CharField()
        started_at = serializers.DateTimeField()
        ended_at = serializers.DateTimeField()
        exception = serializers.CharField()
        attributes = serializers.JSONField()
        inputs = serializers.JSONField()
        output = serializers.JSONField()
        summary = serializers.JSONField()
        wb_user_id = serializers.CharField()
        wb_run_id = serializers.CharField()
        wb_run_step = serializers.IntegerField()
        wb_run_step_end = serializers.IntegerField()
        deleted_at = serializers.DateTimeField()

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        call = call_read(user=request.user, project_id=data["project_id"], call_id=data["id"])
        return Response({"call": None if call is None else self.OutputSerializer(call).data})
