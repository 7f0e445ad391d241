"""`POST /objs/query`: a project's object versions, filtered, sorted and paged (`{objs}`)."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import (
    NullableListField,
    ProjectIdField,
    StrictBooleanField,
    StrictIntegerField,
    StrictStringField,
    WeaveObjectSerializer,
    sort_by_field,
)
from scoring.api.objects import ObjReadApi
from scoring.selectors.objects import objs_query

MAX_OBJECTS = 2**31 - 1


class ObjsQueryApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        class FilterSerializer(WeaveObjectSerializer):
            """Weave's ObjectVersionFilter."""

            object_ids = NullableListField(child=StrictStringField(), required=False)
            is_op = StrictBooleanField(required=False, allow_null=True)
            latest_only = StrictBooleanField(required=False, allow_null=True)
            base_object_classes = NullableListField(child=StrictStringField(), required=False)
            exclude_base_object_classes = NullableListField(child=StrictStringField(), required=False)
            leaf_object_classes = NullableListField(child=StrictStringField(), required=False)
            aliases = NullableListField(child=StrictStringField(), required=False)
            tags = NullableListField(child=StrictStringField(), required=False)

        project_id = ProjectIdField()
        filter = FilterSerializer(required=False, allow_null=True)
        sort_by = sort_by_field()
        limit = StrictIntegerField(min_value=0, max_value=MAX_OBJECTS, required=False, allow_null=True)
        offset = StrictIntegerField(min_value=0, max_value=MAX_OBJECTS, required=False, allow_null=True)
        metadata_only = StrictBooleanField(required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        objs = ObjReadApi.OutputSerializer(many=True)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        objs = objs_query(
            user=request.user,
            project_id=data["project_id"],
            version_filter=data.get("filter"),
            sort_by=data.get("sort_by"),
            limit=data.get("limit"),
            offset=data.get("offset"),
        )
        out = self.OutputSerializer({"objs": objs}).data
        if data.get("metadata_only"):
            for obj in out["objs"]:
                obj["val"] = {}
        return Response(out)
