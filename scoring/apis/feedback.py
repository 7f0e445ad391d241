"""Weave's feedback endpoints: `POST /feedback/create`, `POST /feedback/batch/create` and
`POST /feedback/query`. Bodies are Weave's request models: unknown fields are ignored (newer
clients send more), known ones are type-checked strictly."""

import uuid

from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.apis.fields import StrictListField, StrictObjectSerializer, StrictStringField
from scoring.errors import RequestValidationError, error
from scoring.feedback_selectors import MAX_LIMIT, feedback_query
from scoring.query import QueryError
from scoring.services.feedback import FeedbackSpec, feedback_create, feedback_create_batch

MAX_OFFSET = 2**62  # inside every backend's 64-bit OFFSET


class _JSONValueField(serializers.Field):
    """A JSON value of one type, never coerced; null only where allowed."""

    default_error_messages = {"required": "Field required"}

    def validate_empty_values(self, data):
        if data is empty:
            return super().validate_empty_values(data)
        if data is None and self.allow_null:
            return True, None
        return False, data

    def to_representation(self, value):
        return value


class JSONObjectField(_JSONValueField):
    default_error_messages = {
        **_JSONValueField.default_error_messages,
        "dict_type": "Input should be a valid dictionary",
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("dict_type")
        return data


class UUIDStringField(_JSONValueField):
    default_error_messages = {
        **_JSONValueField.default_error_messages,
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


class StrictIntegerField(_JSONValueField):
    default_error_messages = {
        **_JSONValueField.default_error_messages,
        "int_type": "Input should be a valid integer",
        "greater_than_equal": "Input should be greater than or equal to {min_value}",
        "less_than_equal": "Input should be less than or equal to {max_value}",
    }

    def __init__(self, *, min_value: int | None = None, max_value: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.min_value, self.max_value = min_value, max_value

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("int_type")
        if self.min_value is not None and data < self.min_value:
            self.fail("greater_than_equal", min_value=self.min_value)
        if self.max_value is not None and data > self.max_value:
            self.fail("less_than_equal", max_value=self.max_value)
        return data


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
    def validate_empty_values(self, data):
        if data is None:
            return True, None
        return super().validate_empty_values(data)


class LenientObjectSerializer(StrictObjectSerializer):
    """A JSON object whose unknown fields are ignored."""

    forbid_extra = False


def _spec(data: dict) -> dict:
    """The service's arguments from a validated FeedbackCreateReq (the client's wb_user_id is dropped)."""
    return {
        "project_id": data["project_id"],
        "weave_ref": data["weave_ref"],
        "feedback_type": data["feedback_type"],
        "payload": data["payload"],
        "creator": data.get("creator"),
        "runnable_ref": data.get("runnable_ref"),
        "call_ref": data.get("call_ref"),
        "trigger_ref": data.get("trigger_ref"),
        "annotation_ref": data.get("annotation_ref"),
        "feedback_id": data.get("id"),
    }


class FeedbackCreateApi(APIView):
    class InputSerializer(LenientObjectSerializer):
        project_id = StrictStringField()
        weave_ref = StrictStringField()
        feedback_type = StrictStringField()
        payload = JSONObjectField()
        creator = StrictStringField(required=False, allow_null=True)
        runnable_ref = StrictStringField(required=False, allow_null=True)
        call_ref = StrictStringField(required=False, allow_null=True)
        trigger_ref = StrictStringField(required=False, allow_null=True)
        annotation_ref = StrictStringField(required=False, allow_null=True)
        id = UUIDStringField(required=False, allow_null=True)
        wb_user_id = StrictStringField(required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        created_at = serializers.DateTimeField()
        wb_user_id = serializers.CharField()
        payload = serializers.JSONField()

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = feedback_create(user=request.user, **_spec(serializer.validated_data))
        return Response(self.OutputSerializer(row).data)


class FeedbackCreateBatchApi(APIView):
    class InputSerializer(LenientObjectSerializer):
        batch = StrictListField(child=FeedbackCreateApi.InputSerializer())

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rows = feedback_create_batch(
            user=request.user, batch=[FeedbackSpec(**_spec(item)) for item in serializer.validated_data["batch"]]
        )
        return Response({"res": FeedbackCreateApi.OutputSerializer(rows, many=True).data})


class FeedbackQueryApi(APIView):
    class InputSerializer(LenientObjectSerializer):
        class SortBySerializer(LenientObjectSerializer):
            field = StrictStringField()
            direction = LiteralStringField(choices=("asc", "desc"))

        project_id = StrictStringField()
        fields = NullableListField(child=StrictStringField(), required=False)
        query = JSONObjectField(required=False, allow_null=True)
        sort_by = NullableListField(child=SortBySerializer(), required=False)
        limit = StrictIntegerField(min_value=0, max_value=MAX_LIMIT, required=False, allow_null=True)
        offset = StrictIntegerField(min_value=0, max_value=MAX_OFFSET, required=False, allow_null=True)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            page = feedback_query(user=request.user, **serializer.validated_data)
        except QueryError as exc:
            raise RequestValidationError([error(("body", *exc.loc), exc.msg, exc.type)]) from exc
        return Response({"result": page.result, "total_count": page.total_count})
