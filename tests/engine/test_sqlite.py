"""The zero-set-up default, SQLite, holds up under a worker's threads writing at once (WAL, a busy
timeout, IMMEDIATE transactions): a job is scored completely, with no "database is locked"."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, manage, score_and_wait

pytestmark = pytest.mark.slow

SETUP = """
from django.contrib.auth import get_user_model
from tests import factories
get_user_model().objects.create_user(username="alice")
for i in range(300):
    factories.call(call_id=f"c{i}", output="{}" if i % 3 else "prose")
print(factories.scorer())
print(factories.scorer(class_name="ValidXMLScorer"))
"""


def test_worker_threads_share_sqlite(tmp_path, broker):
    """Eight worker threads score 600 pairs into one SQLite file, each exactly once."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'scoring.sqlite3'}",
    }
    assert manage("migrate", "-v0", env=env).returncode == 0
    setup = manage("shell", "-c", SETUP, env=env)
    assert setup.returncode == 0, setup.stderr
    refs = setup.stdout.split()[-2:]
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "8"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        calls = [f"c{i}" for i in range(300)]
        scored = score_and_wait("alice/demo", calls, refs, env=env)
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=60)
    assert scored.returncode == 0, scored.stderr
    assert "succeeded: 600 succeeded." in scored.stdout
    check = manage(
        "shell",
        "-c",
        "from scoring.models import Feedback; print(Feedback.objects.count(), "
        "Feedback.objects.values('task').distinct().count())",
        env=env,
    )
    assert check.stdout.split()[-2:] == ["600", "600"]
    assert "database is locked" not in log.read_text()
