"""Who is calling and what they may touch: API keys (hashed at rest), HTTP Basic and Bearer
authentication for DRF, and the project access rule."""

import base64
import binascii
import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import authenticate
from django.utils import timezone
from rest_framework import authentication, exceptions

from scoring.models import ApiKey

KEY_BYTES = 20  # 40 hex characters, the shape W&B clients expect of an API key
PREFIX_LENGTH = 8
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(key: str) -> str:
    # Keys are 160 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, user, name: str = "") -> tuple[ApiKey, str]:
    """Create an API key for `user`; returns the row and the key, which is never stored."""
    key = secrets.token_hex(KEY_BYTES)
    row = ApiKey.objects.create(user=user, name=name, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key))
    return row, key


def api_key_revoke(*, api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


def user_for_api_key(key: str):
    """The active user owning a live key, or None."""
    row = (
        ApiKey.objects.select_related("user")
        .filter(key_hash=hash_key(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if row is None:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user


def wb_user_id_for(user) -> str:
    """The user's id as W&B spells it (base64 of `User:<pk>`), the value stored in wb_user_id."""
    return base64.b64encode(f"User:{user.pk}".encode()).decode()


def user_may_access(user, entity: str) -> bool:
    """The project rule: E/P belongs to user E, to members of group E, and to superusers."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser or user.get_username() == entity:
        return True
    return user.groups.filter(name=entity).exists()


class ApiKeyBasicAuthentication(authentication.BaseAuthentication):
    """HTTP Basic: the password is an API key (any username, as Weave sends `api:<key>`),
    or a Django username and password."""

    www_authenticate_realm = "api"

    def authenticate(self, request):
        auth = authentication.get_authorization_header(request).split()
        if not auth or auth[0].lower() != b"basic":
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("Invalid basic header: expected 'Basic <base64>'.")
        try:
            username, sep, password = base64.b64decode(auth[1], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("Invalid basic header: credentials not base64.") from None
        if not sep:
            raise exceptions.AuthenticationFailed("Invalid basic header: expected 'user:password'.")
        user = user_for_api_key(password)
        if user is None and username:
            candidate = authenticate(request=request._request, username=username, password=password)
            user = candidate if candidate is not None and candidate.is_active else None
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid API key or username/password.")
        return user, None

    def authenticate_header(self, request):
        return f'Basic realm="{self.www_authenticate_realm}"'


class ApiKeyBearerAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <api key>`."""

    def authenticate(self, request):
        auth = authentication.get_authorization_header(request).split()
        if not auth or auth[0].lower() != b"bearer":
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("Invalid bearer header: expected 'Bearer <api key>'.")
        try:
            key = auth[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid bearer token.") from None
        user = user_for_api_key(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return user, None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
