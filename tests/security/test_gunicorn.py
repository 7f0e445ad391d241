"""The default server configuration serves other requests while one client is slow: gunicorn
with the project's gunicorn.conf.py, one worker process, a client that never finishes its body."""

import os
import socket
import subprocess
import sys

import httpx
import pytest

from tests.conftest import ROOT, database_url, wait_for

pytestmark = pytest.mark.slow

PORT = 8811


@pytest.fixture
def gunicorn(transactional_db):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings_test",
        "DATABASE_URL": database_url(),
        "GUNICORN_WORKERS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{PORT}", "project.wsgi"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )

    def up():
        try:
            return httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=60, interval=0.3, message="gunicorn to answer")
    yield f"http://127.0.0.1:{PORT}"
    process.terminate()
    process.wait(timeout=30)


def test_a_stalled_request_does_not_stall_the_service(gunicorn, api_key):
    """While an authenticated client has sent its headers but not the body the server is
    reading, other requests are answered by the same (single) worker process."""
    stalled = socket.create_connection(("127.0.0.1", PORT))
    try:
        stalled.sendall(
            b"POST /calls/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {api_key}\r\n".encode()
            + b"Content-Length: 1000\r\n\r\n{"
        )
        answers = [httpx.get(f"{gunicorn}/health", timeout=10).status_code for _ in range(3)]
    finally:
        stalled.close()

    assert answers == [200, 200, 200]
