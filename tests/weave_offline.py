"""The official `weave` package, made to stay on this machine. Import weave through this module.

weave 0.54 reports errors and sessions to Sentry from the moment it is imported, unless
`WANDB_ERROR_REPORTING` is false when it is imported; and `weave.init` asks PyPI for a newer
version, with no setting to turn that off. `loopback_only()` is the proof that nothing else leaves:
while it is active, any connection or name lookup for an address outside 127.0.0.0/8 and ::1
is refused and recorded."""

import ipaddress
import os
import socket
from contextlib import contextmanager

os.environ["WANDB_ERROR_REPORTING"] = "false"

import weave  # noqa: E402
import weave.trace.init_message  # noqa: E402
from weave.telemetry import trace_sentry  # noqa: E402
from weave.trace.serialization import digest  # noqa: E402

trace_sentry.global_trace_sentry._disabled = True  # in case weave was imported before this module

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def _is_loopback(host) -> bool:
    if host is None or host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_address(host) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@contextmanager
def loopback_only():
    """Refuse (and list, in the yielded list) every attempt to reach another host."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            attempts.append(f"connect {address[0]}:{address[1]}")
            raise ConnectionRefusedError(f"tests stay on loopback, not {address[0]}")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if not _is_loopback(name) and not _is_address(name):  # an address needs no lookup: connect checks it
            attempts.append(f"resolve {name}")
            raise socket.gaierror(socket.EAI_NONAME, f"tests stay on loopback, not {name}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = (
            real_connect,
            real_connect_ex,
            real_getaddrinfo,
        )


def no_version_check(monkeypatch) -> None:
    """weave.init's question to PyPI, answered "no newer version" without asking."""
    monkeypatch.setattr(weave.trace.init_message, "check_available", lambda *args, **kwargs: None)


__all__ = ["digest", "loopback_only", "no_version_check", "weave"]
