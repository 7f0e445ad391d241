"""Weave's file endpoints: `POST /file/create` (multipart: `project_id`, `file`, optional
`expected_digest`; answers `{digest}`) and `POST /file/content` (`{project_id, digest}`; answers the
bytes)."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, FormParser, MultiPartParser, get_encoding
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import ProjectIdField, WeaveObjectSerializer, WeaveStringField
from scoring.errors import ApplicationError, NotFound, RequestValidationError, error
from scoring.selectors.files import file_content
from scoring.selectors.projects import project_check
from scoring.services.files import file_create


class FileTooLarge(ApplicationError):
    status_code = 413


def _too_large() -> FileTooLarge:
    limit = settings.SCORING_FILE_MAX_BYTES
    return FileTooLarge(f"Files are at most {limit:,} bytes (SCORING_FILE_MAX_BYTES).")


class GuardedUploadHandler(FileUploadHandler):
    """Refuses an upload before its bytes are read: a body longer than the file limit allows, a
    file part before the `project_id` field, or a project the user may not write; and stops
    reading a file at the limit. First of the request's handlers, so the others see only what
    it let through."""

    def __init__(self, request, user):
        super().__init__(request)
        self.user = user
        self.parser: DjangoMultiPartParser | None = None
        self.size = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # The form fields and part headers around the file need a little room of their own.
        if content_length > settings.SCORING_FILE_MAX_BYTES + 64 * 1024:
            raise _too_large()

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        fields = self.parser._post if self.parser is not None else {}  # the fields parsed so far
        project_id = fields.get("project_id")
        if not project_id:
            raise RequestValidationError(
                [error(("body", "project_id"), "Field required before the file part", "missing")]
            )
        project_check(user=self.user, project_id=project_id)
        self.size = 0

    def receive_data_chunk(self, raw_data, start):
        self.size += len(raw_data)
        if self.size > settings.SCORING_FILE_MAX_BYTES:
            raise _too_large()
        return raw_data

    def file_complete(self, file_size):
        return None


class GuardedMultiPartParser(MultiPartParser):
    """DRF's multipart parser with GuardedUploadHandler in front of the request's handlers."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        guard = GuardedUploadHandler(request._request, request.user)
        try:
            parser = DjangoMultiPartParser(
                meta, stream, [guard, *request.upload_handlers], get_encoding(parser_context)
            )
            guard.parser = parser
            data, files = parser.parse()
            return DataAndFiles(data, files)
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from None


class UploadedFileField(serializers.FileField):
    default_error_messages = {
        "required": "Field required",
        "invalid": "Expected an uploaded file",
        "empty": "Expected an uploaded file",
    }

    def __init__(self, **kwargs):
        super().__init__(allow_empty_file=True, **kwargs)


class FileCreateApi(APIView):
    parser_classes = [GuardedMultiPartParser, FormParser]

    class InputSerializer(WeaveObjectSerializer):
        project_id = ProjectIdField()
        file = UploadedFileField()
        expected_digest = WeaveStringField(required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        digest = serializers.CharField()

    def post(self, request):
        # A multipart form holds lists of values: one value per field (the last) is read.
        form = request.data  # a QueryDict, or an empty dict for a body without a form
        serializer = self.InputSerializer(data=form.dict() if hasattr(form, "dict") else dict(form))
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
