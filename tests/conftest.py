"""Shared fixtures: users and API keys, authenticated API clients, the real Redis broker, and a
real `manage.py rundramatiq` worker process against the test database."""

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dramatiq
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from scoring.services.api_keys import api_key_create
from tests.needs import chromium_path

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _request_threads_close_their_database_sessions():
    """The live server answers each keep-alive connection of a test's HTTP client (the weave
    client's pool) in a thread of its own for as long as the client keeps it open, and with
    persistent database connections (CONN_MAX_AGE) each such thread held a PostgreSQL session to
    the end of the run: 30 or more by the end of the suite, and the test database could not be
    dropped. In the test process, a request's database connection now closes with the request.
    The service's own processes (workers, gunicorn) started by tests keep the production setting."""
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(autouse=True)
def _fresh_failed_login_counters():
    """Every test starts with no failed authentications counted against 127.0.0.1: the counters
    live in the shared Redis cache, and tests deliberately fail to authenticate."""
    import redis

    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    keys = list(client.scan_iter(match="scoring:*:auth-fail:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def make_user(db):
    def make(username="alice", **extra):
        return get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def api_key(user):
    _, key = api_key_create(user=user, name="test")
    return key


def basic(key: str, username: str = "api") -> str:
    return "Basic " + base64.b64encode(f"{username}:{key}".encode()).decode()


@pytest.fixture
def client_for():
    """An API client authenticated as the given user (HTTP Basic with a fresh API key)."""

    def make(user):
        _, key = api_key_create(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=basic(key))
        return client

    return make


@pytest.fixture
def api(client_for, user):
    """An API client authenticated as alice."""
    return client_for(user)


@pytest.fixture
def broker():
    """The real broker of the settings (Redis), emptied before and after the test."""
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


def database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(processes: int = 1, threads: int = 4, extra_env: dict | None = None) -> subprocess.Popen:
    """A real `manage.py rundramatiq` process on the test database and broker."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings_test",
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "rundramatiq", "--processes", str(processes), "--threads", str(threads)],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )


def manage(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `manage.py` in a subprocess on the test database (or the given environment)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings_test",
        "DATABASE_URL": database_url(),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def score_and_wait(project: str, calls: list[str], refs: list[str], **kwargs) -> subprocess.CompletedProcess:
    """`manage.py score ... --wait`: submit a job and follow it to its end."""
    return manage(
        "score", "--project", project, "--calls", *calls, "--scorers", *refs, "--wait", "--poll", "0.2", **kwargs
    )


def stop_worker(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def worker(transactional_db, broker):
    """A running worker process; stopped after the test."""
    process = start_worker()
    yield process
    stop_worker(process)


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1, message: str = "condition"):
    """Poll until predicate() is truthy; fail the test with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"Timed out after {timeout}s waiting for {message}")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's Chromium for browser tests (a failure under CI when it is missing)."""
    return chromium_path()
