"""Weave's file endpoints: `POST /file/create` (multipart: `project_id`, `file`, optional
`expected_digest`; answers `{digest}`) and `POST /file/content` (`{project_id, digest}`; answers the
bytes)."""

from django.http import HttpResponse
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import ProjectIdField, WeaveObjectSerializer, WeaveStringField
from scoring.errors import NotFound
from scoring.selectors.files import file_content
from scoring.services.files import file_create


class UploadedFileField(serializers.FileField):
    default_error_messages = {
        "required": "Field required",
        "invalid": "Expected an uploaded file",
        "empty": "Expected an uploaded file",
    }

    def __init__(self, **kwargs):
        super().__init__(allow_empty_file=True, **kwargs)


class FileCreateApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(WeaveObjectSerializer):
        project_id = ProjectIdField()
        file = UploadedFileField()
        expected_digest = WeaveStringField(required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        digest = serializers.CharField()

    def post(self, request):
        # A multipart form holds lists of values: one value per field (the last) is read.
        serializer = self.InputSerializer(data=request.data.dict())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["file"]
        digest = file_create(
            user=request.user,
            project_id=data["project_id"],
            name=upload.name or "",
            content=upload.read(),
            expected_digest=data.get("expected_digest") or None,
        )
        return Response(self.OutputSerializer({"digest": digest}).data)


class FileContentApi(APIView):
    output_media_type = "application/octet-stream"

    class InputSerializer(WeaveObjectSerializer):
        project_id = ProjectIdField()
        digest = WeaveStringField()

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        content = file_content(user=request.user, project_id=data["project_id"], digest=data["digest"])
        if content is None:
            raise NotFound(f"File {data['digest']} not found in project {data['project_id']}.")
        return HttpResponse(content, content_type="application/octet-stream")
