"""The OpenAPI description (`GET /openapi.json`, rendered at `GET /docs`), made by drf-spectacular
from the views themselves: a view's `InputSerializer` is its request body (its query parameters
for a GET), its `OutputSerializer` its 200 response, and every write documents the 422
`HTTPValidationError`. `POST /calls/score` is described exactly as its contract
(`contract/calls-score.openapi.yaml`) describes it: the same component names, responses and
security schemes."""

from drf_spectacular import openapi
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers

from scoring.api import fields
from scoring.api.calls_score import CallsScoreApi
from scoring.api.fields import StrictStringField

WRITE_METHODS = ("POST", "PUT", "PATCH")


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


# The contract's components, descriptions in English (a comparison of schemas leaves them aside).
VALIDATION_ERROR = {
    "properties": {
        "loc": {
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "title": "Location",
            "type": "array",
        },
        "msg": {"title": "Message", "type": "string"},
        "type": {"title": "Error Type", "type": "string"},
    },
    "required": ["loc", "msg", "type"],
    "title": "ValidationError",
    "type": "object",
}
CALLS_SCORE_REQ = {
    "additionalProperties": False,
    "description": "Queue a scoring job for a list of calls: each scorer ref is applied to each call id, "
    "asynchronously, by the workers.",
    "properties": {
        "call_ids": {
            "description": "The ids of the calls to score",
            "items": {"type": "string"},
            "title": "Call Ids",
            "type": "array",
        },
        "project_id": {"title": "Project Id", "type": "string"},
        "scorer_refs": {
            "description": "The refs of the scorers to apply",
            "items": {"type": "string"},
            "title": "Scorer Refs",
            "type": "array",
        },
        "wb_user_id": {
            **_nullable({"type": "string"}),
            "description": "Do not set: the server sets it from the authenticated user.",
            "title": "Wb User Id",
        },
    },
    "required": ["project_id", "call_ids", "scorer_refs"],
    "title": "CallsScoreReq",
    "type": "object",
}
CALLS_SCORE_RES = {
    "description": "The accepted job (the contract allows fields to be added to this object).",
    "properties": {
        "job_id": {"description": "The job's id, for /calls/score/jobs/<job_id>", "title": "Job Id", "type": "string"},
        "task_count": {
            "description": "One task per distinct (call, scorer) pair",
            "title": "Task Count",
            "type": "integer",
        },
    },
    "title": "CallsScoreRes",
    "type": "object",
}


class HTTPValidationErrorSerializer(serializers.Serializer):
    """A 422 body: `{"detail": [ValidationError, ...]}`."""


class ValidationErrorSerializer(serializers.Serializer):
    """One problem with a request: where (`loc`), what (`msg`) and its pydantic type name."""


class CallsScoreResSerializer(serializers.Serializer):
    """The answer of `POST /calls/score`."""


class ContractComponent(OpenApiSerializerExtension):
    """A component whose schema is fixed here rather than derived from a serializer."""

    component_name: str
    schema: dict

    def get_name(self, auto_schema, direction):
        return self.component_name

    def map_serializer(self, auto_schema, direction):
        return self.schema


class CallsScoreReqComponent(ContractComponent):
    target_class = CallsScoreApi.InputSerializer
    component_name, schema = "CallsScoreReq", CALLS_SCORE_REQ


class CallsScoreResComponent(ContractComponent):
    target_class = CallsScoreResSerializer
    component_name, schema = "CallsScoreRes", CALLS_SCORE_RES


class ValidationErrorComponent(ContractComponent):
    target_class = ValidationErrorSerializer
    component_name, schema = "ValidationError", VALIDATION_ERROR


class HTTPValidationErrorComponent(ContractComponent):
    target_class = HTTPValidationErrorSerializer
    component_name = "HTTPValidationError"

    def map_serializer(self, auto_schema, direction):
        item = auto_schema.resolve_serializer(ValidationErrorSerializer, direction).ref
        return {
            "properties": {"detail": {"items": item, "title": "Detail", "type": "array"}},
            "title": "HTTPValidationError",
            "type": "object",
        }


class HTTPBasicScheme(OpenApiAuthenticationExtension):
    target_class = "scoring.api.auth.ApiKeyBasicAuthentication"
    name = "HTTPBasic"

    def get_security_definition(self, auto_schema):
        return {"scheme": "basic", "type": "http"}


class HTTPBearerScheme(OpenApiAuthenticationExtension):
    target_class = "scoring.api.auth.ApiKeyBearerAuthentication"
    name = "HTTPBearer"

    def get_security_definition(self, auto_schema):
        return {"scheme": "bearer", "type": "http"}


class StrictStringSchema(OpenApiSerializerFieldExtension):
    """Strict string fields (ids, names, refs...) are strings."""

    target_class = StrictStringField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        return build_basic_type(OpenApiTypes.STR)


def _json_field_type(field) -> OpenApiTypes:
    for kind, type_ in (
        (fields.JsonObjectField, OpenApiTypes.OBJECT),
        (fields.StrictIntegerField, OpenApiTypes.INT),
        (fields.StrictBooleanField, OpenApiTypes.BOOL),
        (fields.IsoDateTimeField, OpenApiTypes.DATETIME),
        (fields.UUIDStringField, OpenApiTypes.UUID),
    ):
        if isinstance(field, kind):
            return type_
    return OpenApiTypes.ANY


class WeaveJsonSchema(OpenApiSerializerFieldExtension):
    """The JSON-typed fields of the Weave request models."""

    target_class = fields._JsonField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        return build_basic_type(_json_field_type(self.target))


class AutoSchema(openapi.AutoSchema):
    """Reads our views' conventions (nested Input/OutputSerializer) and the contract."""

    def get_operation_id(self):
        if self.path == "/calls/score":
            return "calls_score_calls_score_post"  # the contract's
        return super().get_operation_id()

    def get_tags(self):
        if self.path == "/calls/score":
            return ["Scores"]
        return super().get_tags()

    def get_request_serializer(self):
        if self.method not in WRITE_METHODS:
            return None
        return getattr(self.view, "InputSerializer", None)  # none: the operation takes no body

    def get_override_parameters(self):
        serializer = getattr(self.view, "InputSerializer", None)
        if serializer is not None and self.method == "GET":
            return [*super().get_override_parameters(), serializer]
        return super().get_override_parameters()

    def get_response_serializers(self):
        if self.path == "/calls/score":
            ok = CallsScoreResSerializer
        else:
            ok = getattr(self.view, "OutputSerializer", None) or OpenApiTypes.OBJECT
        # A view that answers something else than JSON says so (a file's bytes, JSON lines...).
        media_type = getattr(self.view, "output_media_type", "application/json")
        if media_type == "application/octet-stream":
            ok = OpenApiTypes.BINARY
        responses = {(200, media_type): ok}
        if self.method in WRITE_METHODS:
            responses[(422, "application/json")] = HTTPValidationErrorSerializer
        return responses

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        """Nested serializers are named after their view: CallStartApi.InputSerializer is
        `CallStartInput`, not one of many `Input`s."""
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        cls = serializer if isinstance(serializer, type) else type(serializer)
        parts = cls.__qualname__.split(".")
        if len(parts) == 1 or OpenApiSerializerExtension.get_match(serializer):
            return name
        return "".join(part.removesuffix("Serializer").removesuffix("Api") for part in parts)
