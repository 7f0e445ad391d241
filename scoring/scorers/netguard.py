"""Outbound requests to user-chosen URLs (remote scorers), guarded against SSRF: only http(s),
and only to addresses that are public after DNS resolution, unless allowlisted.

Why the check sits in the socket layer: a URL's host name is resolved once, in
`GuardedNetworkBackend.connect_tcp`, every address is vetted, and the socket is opened to the
vetted IP itself. Checking a name and then letting the HTTP library resolve it again would let a
DNS server answer "public" to the check and "127.0.0.1" to the connect (DNS rebinding). Because
the URL keeps its host name, the Host header, TLS SNI and certificate verification all stay on
that name, and pooled connections are keyed by it. `check_url` vets the same way before a
request, so a refusal is reported even when a pooled connection would have been reused.

Settings (read at call time): SCORING_OUTBOUND_ALLOWLIST (CIDRs, IPs or host names exempt from
the private-address rule, each optionally with a port, `10.0.0.5:8080`; an entry without a port
opens every port; cloud metadata addresses stay refused whatever it says) and
SCORING_HTTP_CONNECT_TIMEOUT.
"""

import ipaddress
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings
from django.utils import timezone

from scoring.scorers.base import RetryableError, ScorerFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services: they hand out cloud credentials, so they are refused even when an
# allowlist entry covers them. Most are link-local or private anyway; Azure's is a public address.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS VPC DNS
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::253",
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure WireServer
    )
)

# The upper bound on a remote answer; Weave limits remote scorer bodies to 1 MiB as well.
MAX_RESPONSE_BYTES = 1024 * 1024
# A Retry-After further away than this is treated as this (a task waits, it does not sleep).
MAX_RETRY_AFTER = 3600.0


class OutboundRefused(Exception):
    """The URL may not be requested: wrong scheme, or its host is not a public address."""


class OutboundLookupFailed(Exception):
    """The host name did not resolve; `temporary` when the resolver said to try again."""

    def __init__(self, message: str, *, temporary: bool):
        super().__init__(message)
        self.temporary = temporary


class ResponseTooLarge(Exception):
    """The other side sent more than we are willing to read."""


@dataclass(frozen=True)
class _Allowlist:
    # Each entry with the port it opens; None opens every port of the entry.
    networks: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None], ...]
    hosts: frozenset[tuple[str, int | None]]


def _split_port(entry: str) -> tuple[str, int | None]:
    """`10.0.0.5:8080`, `[::1]:8080`, `host:8080` -> (address, port); a bare entry has no port.
    An unbracketed IPv6 address or network has several colons and never names a port."""
    if entry.startswith("["):
        address, _, rest = entry[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            return address, int(rest[1:])
        return address, None
    address, sep, port = entry.rpartition(":")
    if sep and ":" not in address and port.isdigit():
        return address, int(port)
    return entry, None


@lru_cache(maxsize=32)
def _parse_allowlist(entries: tuple[str, ...]) -> _Allowlist:
    networks, hosts = [], set()
    for entry in entries:
        address, port = _split_port(entry.strip())
        try:
            networks.append((ipaddress.ip_network(address, strict=False), port))
        except ValueError:
            hosts.add((address.lower().rstrip("."), port))
    return _Allowlist(tuple(networks), frozenset(hosts))


def _allowlist() -> _Allowlist:
    entries = getattr(settings, "SCORING_OUTBOUND_ALLOWLIST", ()) or ()
    if isinstance(entries, str):
        entries = entries.split(",")
    return _parse_allowlist(tuple(e.strip() for e in entries if e and e.strip()))


def _allowed(allow: _Allowlist, ip: IPAddress, host: str, port: int | None) -> bool:
    name = host.lower().rstrip(".")
    if any(h == name and p in (None, port) for h, p in allow.hosts):
        return True
    return any(ip in net and p in (None, port) for net, p in allow.networks if net.version == ip.version)


def _unwrap(ip: IPAddress) -> IPAddress:
    # An IPv6 address can carry an IPv4 one (::ffff:127.0.0.1, 6to4, Teredo); judge the IPv4 one.
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return embedded
    return ip


def _why_blocked(ip: IPAddress) -> str | None:
    """The kind of non-public address this is, or None if it is a public one."""
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:  # shared (CGNAT) space, documentation and benchmark ranges...
        return "non-global"
    return None


def vet_address(address: str, host: str, port: int | None = None) -> IPAddress:
    """Return the address if `host` may be reached at it (on `port`), else raise OutboundRefused."""
    ip = _unwrap(ipaddress.ip_address(address.split("%", 1)[0]))
    if ip in METADATA_ADDRESSES:
        raise OutboundRefused(f"{host} resolves to {ip}, a cloud metadata address")
    reason = _why_blocked(ip)
    if reason is None:
        return ip
    if _allowed(_allowlist(), ip, host, port):
        return ip
    raise OutboundRefused(
        f"{host} resolves to {ip}, a {reason} address; outbound requests go to public addresses only "
        "(SCORING_OUTBOUND_ALLOWLIST can exempt internal hosts and ports)"
    )


def resolve(host: str, port: int) -> list[str]:
    """The addresses of a host name (tests replace this to simulate DNS)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        temporary = exc.errno == socket.EAI_AGAIN
        raise OutboundLookupFailed(f"Cannot resolve {host}: {exc.strerror}", temporary=temporary) from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def vetted_addresses(host: str, port: int) -> list[str]:
    """Resolve `host` and vet every address; refuse if any is not allowed (a name that mixes
    public and internal addresses is suspicious in itself)."""
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        addresses = resolve(host, port)
    if not addresses:
        raise OutboundLookupFailed(f"Cannot resolve {host}: no addresses", temporary=True)
    for address in addresses:
        vet_address(address, host, port)
    return addresses


def check_url(url: str) -> None:
    """Refuse a URL that is not http(s) with a host whose addresses are all allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise OutboundRefused(f"Invalid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused(f"Only http and https URLs may be requested, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise OutboundRefused("The URL has no host")
    vetted_addresses(parts.hostname, port)


class GuardedNetworkBackend(httpcore.SyncBackend):
    """Opens TCP connections only to vetted addresses, resolving the name exactly once."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        last_error: Exception | None = None
        for address in vetted_addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        raise last_error  # type: ignore[misc]  # vetted_addresses never returns an empty list


GUARDED_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with the guarded network backend under its connection pool.

    httpx (pinned) builds its httpcore pool without a backend hook, so the pool is rebuilt here
    with the same settings plus our backend; test_netguard checks the guard runs at connect time.
    """

    def __init__(self, limits: httpx.Limits = GUARDED_LIMITS):
        super().__init__(trust_env=False, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(),
        )


_client_lock = threading.Lock()
_clients: dict[str, tuple[int, httpx.Client]] = {}


def shared_client(kind: str) -> httpx.Client:
    """One httpx client per kind and process (httpx clients are thread-safe; a forked child
    builds its own). "guarded" may reach only vetted addresses, never through a proxy and never
    following redirects; "trusted" is for the operator's configured providers."""
    pid = os.getpid()
    entry = _clients.get(kind)
    if entry is not None and entry[0] == pid:
        return entry[1]
    with _client_lock:
        entry = _clients.get(kind)
        if entry is None or entry[0] != pid:
            if kind == "guarded":
                client = httpx.Client(transport=GuardedTransport(), trust_env=False, follow_redirects=False)
            else:
                client = httpx.Client(
                    follow_redirects=False, limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)
                )
            entry = _clients[kind] = (pid, client)
    return entry[1]


@contextmanager
def transport_errors(where: str, kind: str) -> Iterator[None]:
    """Turn a request's transport failures into the errors the task runner acts on: a timeout or
    an unreachable peer is retried, an oversized answer is not. `kind` prefixes the error types
    (`Provider`, `RemoteScorer`)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise RetryableError(
            f"{where} did not answer in time ({type(exc).__name__})", error_type=f"{kind}Timeout"
        ) from None
    except httpx.TransportError as exc:
        raise RetryableError(
            f"{where} could not be reached: {type(exc).__name__}: {exc}", error_type=f"{kind}Unavailable"
        ) from None
    except ResponseTooLarge as exc:
        raise ScorerFailed(f"{where}: {exc}", error_type=f"{kind}BadResponse") from None


def timeout(read: float) -> httpx.Timeout:
    """A timeout for every phase of a request: `read` for answers, the connect setting for TCP/TLS."""
    return httpx.Timeout(read, connect=float(settings.SCORING_HTTP_CONNECT_TIMEOUT))


def read_capped(response: httpx.Response, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """Read a streamed response body, refusing to buffer more than `limit` bytes."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"The answer is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - timezone.now()).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def redact(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """Replace every secret in `text` (a provider may echo the key it was sent)."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    return text
