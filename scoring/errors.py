"""The application's errors: what a service, selector or the engine raises when a request cannot be
served. One handler (`scoring.api.errors.exception_handler`) turns them into HTTP responses; the
command line prints them. No framework's exception is raised outside the API layer."""

from collections.abc import Iterable


class ApplicationError(Exception):
    """An error the client can act on; becomes `{"detail": message}` with its status."""

    status_code = 400

    def __init__(self, message: str, *, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class PermissionDenied(ApplicationError):
    """The user may not act on the project (the project rule)."""

    status_code = 403


class NotFound(ApplicationError):
    """The thing asked for does not exist, or is in a project the user may not see."""

    status_code = 404


class RequestValidationError(ApplicationError):
    """One or more problems with the request, as a list of pydantic-style errors (HTTP 422)."""

    status_code = 422

    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(str(e.get("msg", "")) for e in errors))
        self.errors = errors


def error(loc: Iterable[str | int], msg: str, type_: str, **extra) -> dict:
    """One entry of HTTPValidationError.detail."""
    return {"loc": list(loc), "msg": msg, "type": type_, **extra}
