"""HTTP Basic and Bearer authentication with API keys, for DRF: API keys are checked first (one
SHA-256 and an indexed lookup), a password only when SCORING_API_PASSWORD_LOGIN is on, and failed
attempts are counted per client address and per username in the cache, refused with 429 and
Retry-After past their limit."""

import base64
import binascii
import hashlib
import time

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import caches
from rest_framework import authentication, exceptions

from scoring.services.api_keys import api_key_user


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


class FailedLogins:
    """Fixed-window counters of failed authentications in the shared cache (Redis in production,
    so that every gunicorn worker counts together)."""

    def __init__(self):
        self.window = max(1, int(settings.SCORING_AUTH_FAILURE_WINDOW))
        self.cache = caches[settings.SCORING_AUTH_THROTTLE_CACHE]

    def _key(self, kind: str, value: str) -> str:
        bucket = int(time.time()) // self.window
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"auth-fail:{kind}:{digest}:{bucket}"

    def _retry_after(self) -> int:
        return self.window - int(time.time()) % self.window

    def check(self, kind: str, value: str) -> None:
        """Refuse with 429 when `value` (an address or a username) failed too often this window."""
        limit = (
            settings.SCORING_AUTH_FAILURES_PER_ADDRESS
            if kind == "address"
            else settings.SCORING_AUTH_FAILURES_PER_USERNAME
        )
        if (self.cache.get(self._key(kind, value)) or 0) >= limit:
            raise exceptions.Throttled(
                wait=self._retry_after(), detail="Too many failed authentication attempts; try again later."
            )

    def record(self, kind: str, value: str) -> None:
        key = self._key(kind, value)
        if not self.cache.add(key, 1, timeout=self.window + 1):
            try:
                self.cache.incr(key)
            except ValueError:  # expired between add and incr
                self.cache.add(key, 1, timeout=self.window + 1)


def _refuse(request, message: str, *, username: str | None = None):
    failures = FailedLogins()
    failures.record("address", client_address(request))
    if username:
        failures.record("username", username)
    return exceptions.AuthenticationFailed(message)


class ApiKeyBasicAuthentication(authentication.BaseAuthentication):
    """HTTP Basic: the password is an API key (any username, as Weave sends `api:<key>`), or,
    when SCORING_API_PASSWORD_LOGIN is on, a Django username and password."""

    www_authenticate_realm = "api"

    def authenticate(self, request):
        auth = authentication.get_authorization_header(request).split()
        if not auth or auth[0].lower() != b"basic":
            return None
        FailedLogins().check("address", client_address(request))
        if len(auth) != 2:
            raise _refuse(request, "Invalid basic header: expected 'Basic <base64>'.")
        try:
            username, sep, password = base64.b64decode(auth[1], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _refuse(request, "Invalid basic header: credentials not base64.") from None
        if not sep:
            raise _refuse(request, "Invalid basic header: expected 'user:password'.")
        user = api_key_user(key=password)
        if user is not None:
            return user, None
        if username and settings.SCORING_API_PASSWORD_LOGIN:
            # The password hasher costs a fifth of a second: a throttled username never reaches it.
            FailedLogins().check("username", username)
            candidate = authenticate(request=request._request, username=username, password=password)
            if candidate is not None and candidate.is_active:
                return candidate, None
            raise _refuse(request, "Invalid API key or username/password.", username=username)
        raise _refuse(request, "Invalid API key.")

    def authenticate_header(self, request):
        return f'Basic realm="{self.www_authenticate_realm}"'


class ApiKeyBearerAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <api key>`."""

    def authenticate(self, request):
        auth = authentication.get_authorization_header(request).split()
        if not auth or auth[0].lower() != b"bearer":
            return None
        FailedLogins().check("address", client_address(request))
        if len(auth) != 2:
            raise _refuse(request, "Invalid bearer header: expected 'Bearer <api key>'.")
        try:
            key = auth[1].decode()
        except UnicodeDecodeError:
            raise _refuse(request, "Invalid bearer token.") from None
        user = api_key_user(key=key)
        if user is None:
            raise _refuse(request, "Invalid or revoked API key.")
        return user, None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
