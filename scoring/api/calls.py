"""Weave's call endpoints: `POST /call/start`, `/call/end`, `/call/upsert_batch` and `/call/read`.

Bodies are read as Weave's pydantic models read them: unknown keys are ignored (the weave client
sends extras such as `otel_dump`), known keys are type-checked without coercion by the fields of
scoring.api.fields, which also refuse what the database could not store (a 422, never a 500)."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import (
    ID_LENGTH,
    IsoDateTimeField,
    JsonObjectField,
    JsonValueField,
    ProjectIdField,
    StrictBooleanField,
    StrictIntegerField,
    StrictListField,
    WeaveObjectSerializer,
    WeaveStringField,
)
from scoring.selectors.calls import call_read
from scoring.services.calls import call_end, call_start, calls_upsert_batch


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
        try:
            validated = self._request_serializer(mode).run_validation(req)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"req": exc.detail}) from None
        return mode, validated[mode]

    def _request_serializer(self, mode: str) -> serializers.Serializer:
        # One serializer per mode for the whole batch: building one per item deep-copies its
        # fields each time, which was most of the cost of validating a large batch.
        serializers_by_mode = self.__dict__.setdefault("_request_serializers", {})
        if mode not in serializers_by_mode:
            serializers_by_mode[mode] = self.REQUESTS[mode]()
        return serializers_by_mode[mode]


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
        return Response({"call": call})
