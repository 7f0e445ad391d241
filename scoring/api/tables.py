"""Weave's table endpoints (the rows of datasets): `POST /table/create`, `POST /table/query` and
`POST /table/query_stats`."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import (
    JsonObjectField,
    NullableListField,
    ProjectIdField,
    StrictIntegerField,
    StrictListField,
    StrictStringField,
    WeaveObjectSerializer,
    WeaveStringField,
    sort_by_field,
)
from scoring.selectors.tables import table_query, table_row_count
from scoring.services.tables import table_create

MAX_ROWS = 2**31 - 1
MAX_TABLE_ROWS = 100_000


class TableCreateApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        class TableSerializer(WeaveObjectSerializer):
            """Weave's TableSchemaForInsert."""

            project_id = ProjectIdField()
            # A table is written in one request; its size is bounded by DATA_UPLOAD_MAX_MEMORY_SIZE too.
            rows = StrictListField(child=JsonObjectField(), max_items=MAX_TABLE_ROWS)
            expected_digest = WeaveStringField(required=False, allow_null=True)

        table = TableSerializer()

    class OutputSerializer(serializers.Serializer):
        digest = serializers.CharField()
        row_digests = serializers.ListField(child=serializers.CharField())

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data["table"]
        digest, row_digests = table_create(
            user=request.user,
            project_id=data["project_id"],
            rows=data["rows"],
            expected_digest=data.get("expected_digest"),
        )
        return Response(self.OutputSerializer({"digest": digest, "row_digests": row_digests}).data)


class TableQueryApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        class FilterSerializer(WeaveObjectSerializer):
            row_digests = NullableListField(child=StrictStringField(), required=False)

        project_id = ProjectIdField()
        digest = WeaveStringField()
        filter = FilterSerializer(required=False, allow_null=True)
        sort_by = sort_by_field()
        limit = StrictIntegerField(min_value=0, max_value=MAX_ROWS, required=False, allow_null=True)
        offset = StrictIntegerField(min_value=0, max_value=MAX_ROWS, required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        class RowSerializer(serializers.Serializer):
            digest = serializers.CharField()
            val = serializers.JSONField()
            original_index = serializers.IntegerField()

        rows = RowSerializer(many=True)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rows = table_query(
            user=request.user,
            project_id=data["project_id"],
            digest=data["digest"],
            row_digests=(data.get("filter") or {}).get("row_digests"),
            sort_by=data.get("sort_by"),
            limit=data.get("limit"),
            offset=data.get("offset"),
        )
        return Response(self.OutputSerializer({"rows": rows}).data)


class TableQueryStatsApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        project_id = ProjectIdField()
        digest = WeaveStringField()

    class OutputSerializer(serializers.Serializer):
        count = serializers.IntegerField()

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        count = table_row_count(user=request.user, project_id=data["project_id"], digest=data["digest"])
        return Response(self.OutputSerializer({"count": count}).data)
