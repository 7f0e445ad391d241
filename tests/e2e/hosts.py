"""The test's own servers and hosts for fault tests: a private PostgreSQL, Redis and RabbitMQ, Linux
network namespaces on a bridge standing for other machines, and the service's processes in them."""

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.needs import unavailable

ROOT = Path(__file__).resolve().parents[2]

# The same recovery mechanisms as production, on a clock short enough for a test.
LEASE_SECONDS = 4
FAST_RECOVERY_ENV = {
    "SCORING_HEARTBEAT_SECONDS": "0.5",
    "SCORING_TASK_LEASE_SECONDS": str(LEASE_SECONDS),
    "SCORING_RECONCILE_SECONDS": "1",
    "SCORING_RECONCILE_GRACE_SECONDS": "1",
    "SCORING_DEAD_WORKER_SECONDS": "3",
    "SCORING_RETRY_BASE_DELAY": "0.2",
    "SCORING_RETRY_MAX_DELAY": "1",
}

# Ports of this test suite's private instances (distinct from the machine's shared servers).
PG_PORT, REDIS_PORT, AMQP_PORT, AMQP_DIST_PORT, WEB_PORT = 15851, 16851, 25851, 25852, 8851


def wait_port(host: str, port: int, timeout: float = 60.0, what: str = "a server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout}s")


def run(*cmd: str, check: bool = True, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout, **kwargs)


def kill_group(process: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 30) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def scratch_dir(prefix: str) -> Path:
    """A temporary directory the `postgres` OS user may use too."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


# -- private servers ------------------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb in a temporary directory, run as `postgres`),
    listening on the given addresses; durability is off because nothing here outlives the test."""

    def __init__(self, addresses: list[str], port: int = PG_PORT):
        bindir = run("pg_config", "--bindir", check=False).stdout.strip()
        self.bin = Path(bindir) if bindir else Path(shutil.which("pg_ctl") or "pg_ctl").parent
        if not (self.bin / "initdb").exists() or shutil.which("runuser") is None:
            unavailable("PostgreSQL's initdb or runuser is not installed")
        try:
            run("id", "postgres")
        except subprocess.CalledProcessError:
            unavailable("there is no `postgres` OS user to run a private PostgreSQL as")
        self.addresses, self.port = addresses, port
        self.dir = scratch_dir("scoring-pg-")
        self.data = self.dir / "data"
        shutil.chown(self.dir, "postgres")

    def _as_postgres(self, *cmd: str) -> subprocess.CompletedProcess:
        return run("runuser", "-u", "postgres", "--", *cmd, cwd=self.dir)

    def start(self) -> "PrivatePostgres":
        if not self.data.exists():
            self._as_postgres(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            )
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write("host all all 10.0.0.0/8 trust\n")
        options = (
            f"-c listen_addresses='{','.join(self.addresses)}' -p {self.port} -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=200"
        )
        self._as_postgres(
            str(self.bin / "pg_ctl"), "start", "-w", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options
        )
        return self

    def restart(self) -> None:
        """A real restart: every connection is closed and the server is down for a moment."""
        # With its log file named: the server must not inherit (and hold open) our output pipe.
        self._as_postgres(
            str(self.bin / "pg_ctl"), "restart", "-w", "-m", "fast", "-D", str(self.data), "-l", str(self.dir / "log")
        )

    def stop(self) -> None:
        if self.data.exists():
            run(
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin / "pg_ctl"),
                "stop",
                "-m",
                "immediate",
                "-D",
                str(self.data),
                check=False,
            )
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "scoring") -> str:
        return f"postgres://postgres@{self.addresses[0]}:{self.port}/{database}"

    def create_database(self, name: str = "scoring", template: str = "template0") -> str:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def migrated_database(self, name: str) -> str:
        """A database with the service's schema: migrated once, then copied (much faster)."""
        if not getattr(self, "_template", None):
            url = self.create_database("scoring_template")
            manage("migrate", "--no-input", env=service_env(url, "redis://127.0.0.1:1/0"))
            self._template = "scoring_template"
        return self.create_database(name, template=self._template)


class PrivateRedis:
    """A redis-server of the test's own, without persistence: a restart comes back empty."""

    def __init__(self, addresses: list[str], port: int = REDIS_PORT):
        if shutil.which("redis-server") is None:
            unavailable("redis-server is not installed")
        self.addresses, self.port = addresses, port
        self.dir = scratch_dir("scoring-redis-")
        self.process: subprocess.Popen | None = None

    def start(self) -> "PrivateRedis":
        cmd = [
            "redis-server",
            "--bind",
            *self.addresses,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--protected-mode",
            "no",
        ]
        reap_leftovers()
        with open(self.dir / "log", "ab") as log:
            self.process = register(subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True))
        wait_port(self.addresses[0], self.port, what="the private Redis")
        return self

    def restart_empty(self) -> None:
        self.stop(keep_dir=True)
        self.start()

    def stop(self, keep_dir: bool = False) -> None:
        if self.process is not None:
            kill_group(self.process, signal.SIGKILL)
            self.process = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: int = 0) -> str:
        return f"redis://{self.addresses[0]}:{self.port}/{db}"


class PrivateRabbitMQ:
    """A RabbitMQ node of the test's own (its own node name, ports, config and Mnesia directory);
    guest may connect from the namespaces, not only from loopback."""

    def __init__(self, addresses: list[str], port: int = AMQP_PORT, dist_port: int = AMQP_DIST_PORT):
        self.server = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
        if not self.server.exists():
            found = shutil.which("rabbitmq-server")
            if found is None:
                unavailable("rabbitmq-server is not installed")
            self.server = Path(found)
        self.ctl = self.server.with_name("rabbitmqctl")
        self.addresses, self.port = addresses, port
        self.dir = scratch_dir("scoring-rabbitmq-")
        self.node = f"scoring{port}@localhost"
        listeners = "\n".join(f"listeners.tcp.{i} = {a}:{port}" for i, a in enumerate(addresses, 1))
        (self.dir / "rabbitmq.conf").write_text(f"{listeners}\nloopback_users = none\n")
        (self.dir / "env.conf").write_text("")
        (self.dir / "plugins").write_text("[].\n")
        self.env = {
            **os.environ,
            "HOME": str(self.dir),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "plugins"),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "PrivateRabbitMQ":
        reap_leftovers()
        with open(self.dir / "server.log", "ab") as log:
            self.process = register(
                subprocess.Popen([str(self.server)], env=self.env, stdout=log, stderr=log, start_new_session=True)
            )
        try:
            wait_port(self.addresses[0], self.port, timeout=90, what="the private RabbitMQ")
        except RuntimeError:
            tail = (self.dir / "server.log").read_text()[-2000:]
            unavailable(f"a second RabbitMQ node could not start here: {tail}")
        return self

    def restart(self) -> None:
        self.stop(keep_dir=True)
        self.start()

    def stop(self, keep_dir: bool = False) -> None:
        if self.process is not None:
            run(str(self.ctl), "-n", self.node, "stop", env=self.env, check=False, timeout=60)
            kill_group(self.process, timeout=30)
            self.process = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, heartbeat: int = 2) -> str:
        # A short heartbeat: the node closes the connection of a consumer that went silent and
        # gives its unacknowledged messages to others (the default, 60 s, holds them a minute).
        return f"amqp://guest:guest@{self.addresses[0]}:{self.port}/?heartbeat={heartbeat}"


# -- hosts ----------------------------------------------------------------------------------------


class Host:
    """A network namespace with one veth link to the test's bridge: a machine of its own."""

    def __init__(self, network: "Network", name: str, number: int):
        self.network, self.name = network, name
        self.netns = f"{network.prefix}-{name}"
        self.link = f"{network.prefix}{name}"[:15]  # the bridge's end of the cable
        self.address = f"{network.subnet}.{number}"

    def create(self) -> None:
        ns = ("ip", "netns", "exec", self.netns)
        run("ip", "netns", "add", self.netns)
        run("ip", "link", "add", self.link, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        run("ip", "link", "set", self.link, "master", self.network.bridge, "up")
        run(*ns, "ip", "link", "set", "lo", "up")
        run(*ns, "ip", "addr", "add", f"{self.address}/24", "dev", "eth0")
        run(*ns, "ip", "link", "set", "eth0", "up")
        # Fixed neighbour entries both ways: while the cable is cut, packets are silently lost (as
        # on a real partition) instead of failing fast when address resolution gives up.
        mac = run(*ns, "cat", "/sys/class/net/eth0/address").stdout.strip()
        bridge_mac = Path(f"/sys/class/net/{self.network.bridge}/address").read_text().strip()
        run(
            *ns, "ip", "neigh", "replace", self.network.gateway, "lladdr", bridge_mac, "dev", "eth0", "nud", "permanent"
        )
        run("ip", "neigh", "replace", self.address, "lladdr", mac, "dev", self.network.bridge, "nud", "permanent")

    def cut(self) -> None:
        """Cut the host off: its connections hang (nothing is reset), new ones never connect."""
        run("ip", "link", "set", self.link, "down")

    def heal(self) -> None:
        run("ip", "link", "set", self.link, "up")

    def popen(self, cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
        return popen(["ip", "netns", "exec", self.netns, *cmd], env, log)

    def destroy(self) -> None:
        run("ip", "link", "del", self.link, check=False)
        run("ip", "netns", "del", self.netns, check=False)


class Network:
    """A bridge on this machine (the gateway address, where the private servers listen) and the
    hosts attached to it. Traffic only ever goes to the addresses made here."""

    def __init__(self, prefix: str = "scr", subnet: str = "10.215.15"):
        self.prefix, self.subnet = prefix, subnet
        self.bridge = f"{prefix}br0"
        self.gateway = f"{subnet}.1"
        self.hosts: list[Host] = []

    @staticmethod
    def check() -> None:
        """Skip (fail under CI) unless network namespaces can be made here."""
        if os.geteuid() != 0 or shutil.which("ip") is None:
            unavailable("network namespaces need root and iproute2 (`ip`)")
        probe = "scoring-probe"
        made = run("ip", "netns", "add", probe, check=False)
        run("ip", "netns", "del", probe, check=False)
        if made.returncode != 0:
            unavailable(f"network namespaces cannot be made here: {made.stderr.strip()}")

    def create(self) -> "Network":
        self.destroy()  # whatever a killed earlier run left behind
        # A fixed address: a bridge otherwise takes the lowest of its ports', changing as hosts join,
        # and the hosts' fixed neighbour entries would point at an old one.
        run("ip", "link", "add", self.bridge, "address", "02:00:0a:d7:0f:01", "type", "bridge")
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        return self

    def host(self, name: str) -> Host:
        host = Host(self, name, len(self.hosts) + 2)
        host.create()
        self.hosts.append(host)
        return host

    def destroy(self) -> None:
        for host in self.hosts:
            host.destroy()
        self.hosts = []
        listed = run("ip", "netns", "list", check=False).stdout.split()
        for netns in listed:
            if netns.startswith(f"{self.prefix}-"):
                run("ip", "netns", "del", netns, check=False)
        run("ip", "link", "del", self.bridge, check=False)


# -- the service ----------------------------------------------------------------------------------


def service_env(database_url: str, broker_url: str, **extra: str) -> dict:
    """The environment of a web or worker process of the service on the private servers; `extra`
    may override the fast recovery clock."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings_test", "PYTHONUNBUFFERED": "1"}
    env.update({"DATABASE_URL": database_url, "BROKER_URL": broker_url, **FAST_RECOVERY_ENV, **extra})
    return env


def manage(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


# The process groups this checkout's fault tests started: a run killed before its teardown leaves
# workers that would reconnect to the next run's private servers and score its tasks.
GROUPS_FILE = Path(tempfile.gettempdir()) / f"scoring-e2e-groups-{hashlib.sha256(bytes(ROOT)).hexdigest()[:12]}"
_reaped = False


def reap_leftovers() -> None:
    global _reaped
    if _reaped:
        return
    _reaped = True
    if GROUPS_FILE.exists():
        for line in GROUPS_FILE.read_text().split():
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                os.killpg(int(line), signal.SIGKILL)
        GROUPS_FILE.unlink()


def popen(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    """A process of the service in its own process group, its output in `log`."""
    reap_leftovers()
    with open(log, "ab") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return register(process)


def register(process: subprocess.Popen) -> subprocess.Popen:
    with open(GROUPS_FILE, "a") as groups:
        groups.write(f"{process.pid}\n")
    return process


def worker_cmd(threads: int = 4) -> list[str]:
    return [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", str(threads)]


def web_cmd(address: str, port: int = WEB_PORT) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "project.wsgi", "-b", f"{address}:{port}", "-w", "2"]


class Api:
    """The service's HTTP API as a client on another host sees it."""

    def __init__(self, base_url: str, key: str):
        self.base_url, self.key = base_url, key

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def get(self, path: str) -> dict:
        request = urllib.request.Request(self.base_url + path, headers={"Authorization": f"Bearer {self.key}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def log_calls(self, project_id: str, outputs: dict[str, str]) -> None:
        ts = "2026-01-01T00:00:00Z"
        batch = []
        for call_id, output in outputs.items():
            start = {
                "project_id": project_id,
                "id": call_id,
                "op_name": "answer",
                "started_at": ts,
                "attributes": {},
                "inputs": {},
            }
            end = {"project_id": project_id, "id": call_id, "ended_at": ts, "output": output, "summary": {}}
            batch += [{"mode": "start", "req": {"start": start}}, {"mode": "end", "req": {"end": end}}]
        self.post("/call/upsert_batch", {"batch": batch})

    def publish_scorer(self, project_id: str, object_id: str, class_name: str, **fields) -> str:
        val = {"_type": class_name, "_class_name": class_name, "_bases": ["Scorer", "Object", "BaseModel"], **fields}
        digest = self.post("/obj/create", {"obj": {"project_id": project_id, "object_id": object_id, "val": val}})
        return f"weave:///{project_id}/object/{object_id}:{digest['digest']}"

    def score(self, project_id: str, call_ids: list[str], scorer_refs: list[str]) -> str:
        body = {"project_id": project_id, "call_ids": call_ids, "scorer_refs": scorer_refs}
        return self.post("/calls/score", body)["job_id"]


class Ledger:
    """What the database holds about a job, read straight from the private PostgreSQL."""

    def __init__(self, database_url: str):
        self.conn = psycopg.connect(database_url, autocommit=True)

    def reconnect(self) -> None:
        url = self.conn.info.dsn
        self.conn.close()
        self.conn = psycopg.connect(url, autocommit=True)

    def _rows(self, sql: str, *params):
        try:
            return self.conn.execute(sql, params).fetchall()
        except psycopg.OperationalError:  # the server was restarted under us
            self.reconnect()
            return self.conn.execute(sql, params).fetchall()

    def statuses(self, job_id: str) -> dict[str, int]:
        rows = self._rows("SELECT status, count(*) FROM scoring_scoringtask WHERE job_id = %s GROUP BY 1", job_id)
        return dict(rows)

    def unfinished(self, job_id: str) -> int:
        from scoring.models import TASK_UNFINISHED

        counts = self.statuses(job_id)
        return sum(counts.get(s, 0) for s in TASK_UNFINISHED)

    def finished(self, job_id: str, pairs: int) -> bool:
        counts = self.statuses(job_id)
        return sum(counts.values()) == pairs and self.unfinished(job_id) == 0

    def errors(self, job_id: str) -> list[tuple[str, str, int]]:
        """(error_type, error_message, how many) of the job's failed tasks."""
        return self._rows(
            "SELECT error_type, left(error_message, 300), count(*) FROM scoring_scoringtask "
            "WHERE job_id = %s AND status = 'failed' GROUP BY 1, 2",
            job_id,
        )

    def running_calls(self, job_id: str) -> dict[str, int]:
        """The call ids of the job's running tasks, with the attempt that holds each."""
        rows = self._rows(
            "SELECT c.call_id, t.attempts FROM scoring_scoringtask t JOIN scoring_call c ON c.id = t.call_id "
            "WHERE t.job_id = %s AND t.status = 'running'",
            job_id,
        )
        return dict(rows)

    def feedback(self, job_id: str) -> list[tuple[str, str, dict]]:
        """(weave_ref, runnable_ref, payload) of each feedback row written for the job's tasks."""
        return self._rows(
            "SELECT f.weave_ref, f.runnable_ref, f.payload FROM scoring_feedback f "
            "JOIN scoring_scoringtask t ON t.id = f.task_id WHERE t.job_id = %s",
            job_id,
        )

    def feedback_in_project(self, project_id: str) -> int:
        entity, name = project_id.split("/")
        rows = self._rows(
            "SELECT count(*) FROM scoring_feedback f JOIN scoring_project p ON p.id = f.project_id "
            "WHERE p.entity = %s AND p.name = %s",
            entity,
            name,
        )
        return rows[0][0]

    def close(self) -> None:
        self.conn.close()


def wait_until(predicate, *, timeout: float, interval: float = 0.2, message: str, state=None):
    """Poll until predicate() is truthy; fail after `timeout` s saying what, and `state()` then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"Not within {timeout:.0f}s: {message}" + (f" ({state()})" if state else ""))
