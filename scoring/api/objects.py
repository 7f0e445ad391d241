"""Weave's object endpoints: `POST /obj/create` (a new version, or the existing one with the same
content) and `POST /obj/read` (by digest, `latest` or `v<N>`)."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import (
    JsonValueField,
    ProjectIdField,
    StrictBooleanField,
    WeaveObjectSerializer,
    WeaveStringField,
)
from scoring.selectors.objects import object_read
from scoring.services.objects import object_create

CLASS_NAME_LENGTH = 128  # Object.base_object_class, leaf_object_class


class ObjCreateApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        class ObjSerializer(WeaveObjectSerializer):
            """Weave's ObjSchemaForInsert, with the `expected_digest` the weave client sends."""

            project_id = ProjectIdField()
            object_id = WeaveStringField(min_length=1, max_length=128, pattern=r"[\w.-]+")  # Weave's charset
            val = JsonValueField(allow_null=True)
            builtin_object_class = WeaveStringField(required=False, allow_null=True, max_length=CLASS_NAME_LENGTH)
            set_base_object_class = WeaveStringField(required=False, allow_null=True, max_length=CLASS_NAME_LENGTH)
            expected_digest = WeaveStringField(required=False, allow_null=True)
            wb_user_id = WeaveStringField(required=False, allow_null=True)  # type-checked, then ignored

            def validate_val(self, val):
                # The object's classes are read from these; each must fit its column.
                if not isinstance(val, dict):
                    return val
                if isinstance(val.get("_class_name"), str) and len(val["_class_name"]) > CLASS_NAME_LENGTH:
                    raise serializers.ValidationError({"_class_name": [_too_long()]})
                bases = val.get("_bases") if isinstance(val.get("_bases"), list) else []
                for index, base in enumerate(bases):
                    if isinstance(base, str) and len(base) > CLASS_NAME_LENGTH:
                        raise serializers.ValidationError({"_bases": {index: [_too_long()]}})
                return val

        obj = ObjSerializer()

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data["obj"]
        obj = object_create(
            user=request.user,
            project_id=data["project_id"],
            object_id=data["object_id"],
            val=data["val"],
            builtin_object_class=data.get("builtin_object_class") or data.get("set_base_object_class"),
            expected_digest=data.get("expected_digest"),
        )
        return Response({"digest": obj.digest, "object_id": obj.object_id})


def _too_long() -> serializers.ErrorDetail:
    return serializers.ErrorDetail(f"String should have at most {CLASS_NAME_LENGTH} characters", code="string_too_long")


class ObjReadApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        project_id = ProjectIdField()
        object_id = WeaveStringField()
        digest = WeaveStringField()
        metadata_only = StrictBooleanField(required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        """Weave's ObjSchema."""

        project_id = serializers.CharField(source="project.project_id")
        object_id = serializers.CharField()
        created_at = serializers.DateTimeField()
        deleted_at = serializers.DateTimeField()
        digest = serializers.CharField()
        version_index = serializers.IntegerField()
        is_latest = serializers.SerializerMethodField()
        kind = serializers.CharField()
        base_object_class = serializers.CharField()
        leaf_object_class = serializers.CharField()
        val = serializers.JSONField()
        wb_user_id = serializers.CharField()

        def get_is_latest(self, obj) -> int:
            return int(obj.is_latest)  # Weave's ObjSchema has it as 0/1

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        obj = object_read(
            user=request.user, project_id=data["project_id"], object_id=data["object_id"], version=data["digest"]
        )
        out = self.OutputSerializer(obj).data
        if data.get("metadata_only"):
            out["val"] = {}
        return Response({"obj": out})
