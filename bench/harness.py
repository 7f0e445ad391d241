"""Shared set-up for the benchmarks: a dedicated PostgreSQL database and Redis db, a gunicorn web
server and `rundramatiq` workers as real processes, bulk-loaded calls and scorers, and timing and
memory helpers. Benchmarks are run by hand (see docs/benchmarks.md); tests never time things."""

import os
import signal
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_DB", "scoring_bench")
DATABASE_URL = f"{PG}/{DB_NAME}"
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/9")
PORT = int(os.environ.get("BENCH_PORT", "8765"))
ENV = {
    **os.environ,
    "DATABASE_URL": DATABASE_URL,
    "BROKER_URL": BROKER_URL,
    "SECRET_KEY": "bench-only-not-secret-0123456789abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "LOG_LEVEL": "WARNING",
    "PYTHONUNBUFFERED": "1",
}


def setup_django():
    os.environ.update({k: v for k, v in ENV.items() if k not in os.environ or k in ("DATABASE_URL", "BROKER_URL")})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def reset_database():
    """Drop and recreate the benchmark database, then migrate it."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=ENV, check=True)


def flush_broker():
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()


def start(args: list[str], **env) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env={**ENV, **env}, start_new_session=True)


def stop(process: subprocess.Popen, sig=signal.SIGTERM):
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def web_server(workers: int = 2):
    """gunicorn serving the project on 127.0.0.1:PORT."""
    process = start(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "project.wsgi",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{PORT}",
            "--timeout",
            "300",
            "--log-level",
            "warning",
        ]
    )
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/server_info").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        stop(process)
        raise RuntimeError("gunicorn did not start")
    try:
        yield process
    finally:
        stop(process)


@contextmanager
def worker_processes(processes: int = 2, threads: int = 8, **env):
    process = start(
        [sys.executable, "manage.py", "rundramatiq", "--processes", str(processes), "--threads", str(threads)], **env
    )
    try:
        yield process
    finally:
        stop(process)


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of a process (VmRSS now, or VmHWM: the peak so far), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def make_user_and_key(username: str = "bench") -> str:
    from django.contrib.auth import get_user_model

    from scoring.services.api_keys import api_key_create

    user, _ = get_user_model().objects.get_or_create(username=username)
    return api_key_create(user=user)[1]


def load_calls(project_id: str, count: int, *, output=lambda i: f'{{"answer": {i}}}', prefix="c") -> list[str]:
    """Insert `count` ended calls with COPY; returns their ids."""
    from django.db import connection
    from django.utils import timezone

    from scoring.models import Project

    entity, name = project_id.split("/")
    project, _ = Project.objects.get_or_create(entity=entity, name=name)
    ids = [f"{prefix}{i}" for i in range(count)]
    now = timezone.now()
    import json

    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY scoring_call (project_id, call_id, op_name, trace_id, started_at, ended_at, attributes, inputs, "
            "output) FROM STDIN"
        ) as copy,
    ):
        for i, call_id in enumerate(ids):
            copy.write_row(
                (project.pk, call_id, "op", call_id, now, now, "{}", json.dumps({"q": i}), json.dumps(output(i)))
            )
    return ids


def publish_scorers(project_id: str, count: int, class_name: str = "ValidJSONScorer") -> list[str]:
    from scoring.models import Project
    from scoring.services.objects import object_store

    entity, name = project_id.split("/")
    project = Project.objects.get(entity=entity, name=name)
    refs = []
    for k in range(count):
        val = {
            "_type": class_name,
            "_class_name": class_name,
            "_bases": ["Scorer", "Object", "BaseModel"],
            "name": f"{class_name}-{k}",
        }
        obj = object_store(project=project, object_id=f"{class_name}-{k}", val=val)
        refs.append(f"weave:///{project_id}/object/{obj.object_id}:{obj.digest}")
    return refs


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def machine() -> str:
    import platform

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024} GiB, Python {platform.python_version()}"


def publish_monitor(project_id: str, name: str, scorer_refs: list[str], op: str, username: str = "bench") -> str:
    """An active Weave Monitor on `op` (any digest), shaped as the weave client stores it."""
    from django.contrib.auth import get_user_model

    from scoring.models import Project
    from scoring.services.objects import object_store
    from scoring.weave.ids import wb_user_id_for

    entity, project_name = project_id.split("/")
    project, _ = Project.objects.get_or_create(entity=entity, name=project_name)
    val = {
        "_type": "Monitor",
        "_class_name": "Monitor",
        "_bases": ["Object", "BaseModel"],
        "name": name,
        "active": True,
        "scorers": scorer_refs,
        "op_names": [f"weave:///{project_id}/op/{op}:*"],
        "query": None,
        "sampling_rate": 1.0,
        "is_traced": True,
        "scorer_debounce_config": None,
    }
    user = get_user_model().objects.get(username=username)
    obj = object_store(project=project, object_id=name, val=val, wb_user_id=wb_user_id_for(user))
    return f"weave:///{project_id}/object/{name}:{obj.digest}"


def make_project(project_id: str):
    from scoring.models import Project

    entity, name = project_id.split("/")
    return Project.objects.get_or_create(entity=entity, name=name)[0]
