"""The one exception handler: the application's errors and DRF's own, in the contract's shapes
(HTTP 422 `HTTPValidationError` with pydantic type names, else `{"detail": "..."}`); and JSON
bodies for Django's error views. No input may produce a 500."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import DataError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from scoring.errors import ApplicationError, RequestValidationError, error

logger = logging.getLogger(__name__)

# DRF's error codes, as pydantic names them in FastAPI's 422 bodies.
PYDANTIC_TYPES = {
    "required": ("missing", "Field required"),
    "not_a_list": ("list_type", "Input should be a valid list"),
    "not_a_dict": ("dict_type", "Input should be a valid dictionary"),
    "invalid": ("value_error", None),
    "null": ("value_error", "Input should not be null"),
}


def flatten_drf_errors(detail, loc: tuple = ("body",)) -> list[dict]:
    """Turn DRF's nested ValidationError detail into a flat list of located errors."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            sub = loc if key == "non_field_errors" else (*loc, int(key) if str(key).isdigit() else key)
            out.extend(flatten_drf_errors(value, sub))
        return out
    if isinstance(detail, list):
        out = []
        for item in detail:
            out.extend(flatten_drf_errors(item, loc))
        return out
    code = getattr(detail, "code", None) or "value_error"
    type_, msg = PYDANTIC_TYPES.get(code, (code, None))
    return [error(loc, msg or str(detail), type_)]


def validation_response(errors: list[dict]) -> Response:
    return Response({"detail": errors}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)


def exception_handler(exc, context):
    """DRF's exception handler, speaking the contract's error shapes."""
    if isinstance(exc, RequestValidationError):
        return validation_response(exc.errors)
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message}, status=exc.status_code)
    if isinstance(exc, exceptions.ValidationError):
        return validation_response(flatten_drf_errors(exc.detail))
    if isinstance(exc, exceptions.ParseError):
        return validation_response([error(("body",), "JSON decode error", "json_invalid")])
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Response(
            {"detail": "Request body must be JSON (Content-Type: application/json)."},
            status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        )
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        return Response({"detail": _TOO_LARGE}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DataError):
        # The last line of defence for a value no check above caught (a string longer than its
        # column, a number out of range): the client's input, so a 422, never the database's text.
        logger.warning("Database refused a value in %s: %s", context.get("view"), exc)
        return validation_response([error(("body",), "A value does not fit the column it is stored in", "value_error")])
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    logger.exception("Unhandled error in %s", context.get("view"))
    return Response({"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


@csrf_exempt  # also the catch-all route: a POST to an unknown route is a 404, not a CSRF 403
def json_not_found(request, exception=None):
    return JsonResponse({"detail": "Not found."}, status=404)


_TOO_LARGE = "Request body is larger than this server accepts (DATA_UPLOAD_MAX_MEMORY_SIZE)."


def json_bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig | TooManyFieldsSent):
        return JsonResponse({"detail": _TOO_LARGE}, status=413)
    return JsonResponse({"detail": "Bad request."}, status=400)


def json_permission_denied(request, exception=None):
    return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)


def json_server_error(request):
    return JsonResponse({"detail": "Internal server error."}, status=500)
