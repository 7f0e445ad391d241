"""Weave's call queries: `POST /calls/stream_query` (the matching calls as JSON lines, streamed)
and `POST /calls/query_stats` (`{count}`)."""

import itertools
import json

from django.http import StreamingHttpResponse
from rest_framework import renderers, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.calls import CallReadApi
from scoring.api.fields import (
    MAX_COLUMNS,
    JsonObjectField,
    NullableListField,
    ProjectIdField,
    StrictBooleanField,
    StrictIntegerField,
    StrictStringField,
    WeaveObjectSerializer,
    sort_by_field,
)
from scoring.selectors.calls import calls_count, calls_query

MAX_CALLS = 2**62  # inside every backend's 64-bit LIMIT/OFFSET


class JSONLinesRenderer(renderers.BaseRenderer):
    """`application/jsonl`, the type the weave client asks for; an error body is one line."""

    media_type = "application/jsonl"
    format = "jsonl"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return b"" if data is None else json.dumps(data).encode() + b"\n"


class CallsFilterSerializer(WeaveObjectSerializer):
    """Weave's CallsFilter."""

    op_names = NullableListField(child=StrictStringField(), required=False)
    input_refs = NullableListField(child=StrictStringField(), required=False)
    output_refs = NullableListField(child=StrictStringField(), required=False)
    parent_ids = NullableListField(child=StrictStringField(), required=False)
    trace_ids = NullableListField(child=StrictStringField(), required=False)
    call_ids = NullableListField(child=StrictStringField(), required=False)
    thread_ids = NullableListField(child=StrictStringField(), required=False)
    turn_ids = NullableListField(child=StrictStringField(), required=False)
    trace_roots_only = StrictBooleanField(required=False, allow_null=True)
    wb_user_ids = NullableListField(child=StrictStringField(), required=False)
    wb_run_ids = NullableListField(child=StrictStringField(), required=False)


def run_query(selector, *, user, data: dict, **extra):
    """Call a calls selector with a validated CallsQueryReq/CallsQueryStatsReq (a query it cannot
    translate raises QueryError, a 422 located in the body)."""
    return selector(
        user=user, project_id=data["project_id"], call_filter=data.get("filter"), query=data.get("query"), **extra
    )


class CallsStreamQueryApi(APIView):
    renderer_classes = [renderers.JSONRenderer, JSONLinesRenderer]
    output_media_type = JSONLinesRenderer.media_type
    OutputSerializer = CallReadApi.OutputSerializer  # one call (Weave's CallSchema) per line

    class InputSerializer(WeaveObjectSerializer):
        """Weave's CallsQueryReq (`columns` and `expand_columns` are accepted; every column is
        returned, and refs are left for the client to resolve)."""

        project_id = ProjectIdField()
        filter = CallsFilterSerializer(required=False, allow_null=True)
        query = JsonObjectField(required=False, allow_null=True)
        sort_by = sort_by_field()
        limit = StrictIntegerField(min_value=0, max_value=MAX_CALLS, required=False, allow_null=True)
        offset = StrictIntegerField(min_value=0, max_value=MAX_CALLS, required=False, allow_null=True)
        columns = NullableListField(child=StrictStringField(), max_items=MAX_COLUMNS, required=False)
        expand_columns = NullableListField(child=StrictStringField(), max_items=MAX_COLUMNS, required=False)
        include_feedback = StrictBooleanField(required=False, allow_null=True)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        calls = run_query(
            calls_query,
            user=request.user,
            data=data,
            sort_by=data.get("sort_by"),
            limit=data.get("limit"),
            offset=data.get("offset"),
            include_feedback=bool(data.get("include_feedback")),
        )
        # The query runs here, before the first byte: a failure is still an ordinary error answer.
        calls = iter(calls)
        first = next(calls, None)
        lines = itertools.chain(() if first is None else (first,), calls)
        return StreamingHttpResponse(
            (json.dumps(call).encode() + b"\n" for call in lines), content_type=JSONLinesRenderer.media_type
        )


class CallsQueryStatsApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        """Weave's CallsQueryStatsReq."""

        project_id = ProjectIdField()
        filter = CallsFilterSerializer(required=False, allow_null=True)
        query = JsonObjectField(required=False, allow_null=True)
        limit = StrictIntegerField(min_value=0, max_value=MAX_CALLS, required=False, allow_null=True)
        expand_columns = NullableListField(child=StrictStringField(), max_items=MAX_COLUMNS, required=False)
        include_total_storage_size = StrictBooleanField(required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        count = serializers.IntegerField()

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        count = run_query(calls_count, user=request.user, data=data, limit=data.get("limit"))
        return Response(self.OutputSerializer({"count": count}).data)
