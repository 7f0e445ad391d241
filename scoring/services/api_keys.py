"""API keys: created for a user (only their SHA-256 is kept), revoked, and looked up."""

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

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


def api_key_user(*, key: str):
    """The active user owning a live key, or None; notes when the key was last used."""
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
