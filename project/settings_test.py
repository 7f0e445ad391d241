"""Settings for the test suite: the base settings, against the PostgreSQL and Redis named by
DATABASE_URL and BROKER_URL (`make test` sets both to the local servers)."""

import os

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("SECRET_KEY", "test-suite-only-not-secret-" + "0123456789abcdefghijklmnopqrstuvwxyz")

_missing = [name for name in ("DATABASE_URL", "BROKER_URL") if not os.environ.get(name)]
if _missing:
    raise ImproperlyConfigured(
        f"The test suite needs {' and '.join(_missing)}: it runs against a real PostgreSQL and a real "
        "Redis. Run `make test` (it uses postgres://postgres@127.0.0.1:5432/test and "
        "redis://127.0.0.1:6379/15), or set e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/test "
        "BROKER_URL=redis://127.0.0.1:6379/15."
    )

from project.settings import *  # noqa: E402,F403

ALLOWED_HOSTS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
