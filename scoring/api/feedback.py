"""Weave's feedback endpoints: `POST /feedback/create`, `POST /feedback/batch/create` and
`POST /feedback/query`. Bodies are Weave's request models: unknown fields are ignored (newer
clients send more), known ones are type-checked strictly."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import (
    MAX_COLUMNS,
    JsonObjectField,
    NullableListField,
    StrictIntegerField,
    StrictListField,
    StrictStringField,
    UUIDStringField,
    WeaveObjectSerializer,
    WeaveStringField,
    sort_by_field,
)
from scoring.models import Feedback
from scoring.selectors.feedback import MAX_LIMIT, feedback_query
from scoring.services.feedback import FeedbackSpec, feedback_create, feedback_create_batch

MAX_OFFSET = 2**62  # inside every backend's 64-bit OFFSET
NAME_LENGTH = Feedback._meta.get_field("feedback_type").max_length  # and creator


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
    class InputSerializer(WeaveObjectSerializer):
        project_id = StrictStringField()
        weave_ref = WeaveStringField()
        feedback_type = WeaveStringField(max_length=NAME_LENGTH)
        payload = JsonObjectField()
        creator = WeaveStringField(max_length=NAME_LENGTH, required=False, allow_null=True)
        runnable_ref = WeaveStringField(required=False, allow_null=True)
        call_ref = WeaveStringField(required=False, allow_null=True)
        trigger_ref = WeaveStringField(required=False, allow_null=True)
        annotation_ref = WeaveStringField(required=False, allow_null=True)
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
    class InputSerializer(WeaveObjectSerializer):
        batch = StrictListField(child=FeedbackCreateApi.InputSerializer())

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rows = feedback_create_batch(
            user=request.user, batch=[FeedbackSpec(**_spec(item)) for item in serializer.validated_data["batch"]]
        )
        return Response({"res": FeedbackCreateApi.OutputSerializer(rows, many=True).data})


class FeedbackQueryApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        project_id = StrictStringField()
        fields = NullableListField(child=StrictStringField(), max_items=MAX_COLUMNS, required=False)
        query = JsonObjectField(required=False, allow_null=True)
        sort_by = sort_by_field()
        limit = StrictIntegerField(min_value=0, max_value=MAX_LIMIT, required=False, allow_null=True)
        offset = StrictIntegerField(min_value=0, max_value=MAX_OFFSET, required=False, allow_null=True)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        page = feedback_query(user=request.user, **serializer.validated_data)
        return Response({"result": page.result, "total_count": page.total_count})
