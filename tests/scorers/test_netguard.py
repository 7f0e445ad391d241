"""The SSRF guard: which addresses outbound requests may reach, checked after DNS resolution and
again at connect time, plus the Retry-After and redaction helpers. No traffic leaves 127.0.0.1."""

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from django.utils.http import http_date

from scoring.scorers import netguard
from tests.fakes.server import Reply, ScriptedServer


@pytest.fixture
def server():
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def dns(monkeypatch):
    """Replace DNS: host name -> list of answers, one per lookup (the last one repeats)."""
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []

    def resolve(host, port):
        lookups.append(host)
        if host not in answers:
            raise netguard.OutboundLookupFailed(f"Cannot resolve {host}", temporary=False)
        queue = answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    monkeypatch.setattr(netguard, "resolve", resolve)
    resolve.answers, resolve.lookups = answers, lookups
    return resolve


REFUSED = [
    ("http://127.0.0.1:8080/score", "loopback"),
    ("http://127.1.2.3/score", "loopback"),
    ("http://10.0.0.5/score", "private"),
    ("http://172.16.3.4/score", "private"),
    ("http://192.168.1.1/score", "private"),
    ("http://100.64.0.1/score", "non-global"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://169.254.1.1/score", "link-local"),
    ("http://[::1]:8080/score", "loopback"),
    ("http://[::ffff:127.0.0.1]/score", "loopback"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    ("http://[fe80::1]/score", "link-local"),
    ("http://0.0.0.0/score", "unspecified"),
    ("http://224.0.0.1/score", "multicast"),
    ("http://240.0.0.1/score", "reserved"),
    ("https://localhost/score", "loopback"),
]


@pytest.mark.parametrize(("url", "kind"), REFUSED)
def test_internal_addresses_are_refused(url, kind):
    """Loopback, private, link-local, metadata and other non-public addresses are refused,
    by literal or by a name that resolves to them."""
    with pytest.raises(netguard.OutboundRefused) as excinfo:
        netguard.check_url(url)

    assert kind in str(excinfo.value)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/", "//x/y"])
def test_only_http_and_https(url):
    """Other schemes are refused before any lookup."""
    with pytest.raises(netguard.OutboundRefused, match="Only http and https"):
        netguard.check_url(url)


def test_name_resolving_to_loopback_is_refused(dns):
    """The check is on the resolved address, not the name."""
    dns.answers["scorer.example.test"] = [["127.0.0.1"]]

    with pytest.raises(netguard.OutboundRefused, match="scorer.example.test resolves to 127.0.0.1"):
        netguard.check_url("https://scorer.example.test/score")


def test_name_with_one_internal_address_is_refused(dns):
    """A name with a public and an internal address is refused as a whole."""
    dns.answers["mixed.example.test"] = [["93.184.216.34", "10.0.0.7"]]

    with pytest.raises(netguard.OutboundRefused, match="10.0.0.7"):
        netguard.check_url("https://mixed.example.test/")


def test_public_address_passes():
    """A public address is allowed (checked without connecting)."""
    assert str(netguard.vet_address("93.184.216.34", "example.com")) == "93.184.216.34"


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "localhost"])
def test_allowlist_exempts_internal_hosts(settings, entry):
    """SCORING_OUTBOUND_ALLOWLIST entries (IPs, CIDRs, host names) may be reached."""
    settings.SCORING_OUTBOUND_ALLOWLIST = [entry]

    netguard.check_url("http://localhost:9/score" if entry == "localhost" else "http://127.0.0.1:9/score")


def test_allowlist_as_comma_separated_string(settings):
    """The allowlist may also be given as the raw comma-separated string."""
    settings.SCORING_OUTBOUND_ALLOWLIST = "10.0.0.0/8, 127.0.0.1"

    netguard.check_url("http://10.1.2.3/score")
    with pytest.raises(netguard.OutboundRefused):
        netguard.check_url("http://192.168.0.1/score")


@pytest.mark.parametrize("entry", ["127.0.0.1:8080", "localhost:8080", "127.0.0.0/8:8080", "[::1]:8080"])
def test_allowlist_entry_with_a_port_opens_only_that_port(settings, entry):
    """An allowlist entry naming a port opens that port of the host, and no other."""
    settings.SCORING_OUTBOUND_ALLOWLIST = [entry]
    host = "[::1]" if entry.startswith("[") else ("localhost" if entry.startswith("localhost") else "127.0.0.1")
    if host == "localhost":
        netguard.check_url("http://localhost:8080/score")
    else:
        netguard.check_url(f"http://{host}:8080/score")

    with pytest.raises(netguard.OutboundRefused):
        netguard.check_url(f"http://{host}:8081/score")


def test_allowlist_never_exempts_metadata(settings):
    """Cloud metadata addresses stay refused even inside an allowlisted range."""
    settings.SCORING_OUTBOUND_ALLOWLIST = ["169.254.0.0/16", "0.0.0.0/0"]

    with pytest.raises(netguard.OutboundRefused, match="metadata"):
        netguard.check_url("http://169.254.169.254/latest/meta-data/")


def test_guard_runs_at_connect_time(server):
    """The guarded client refuses at the socket even if nobody called check_url first."""
    client = netguard.shared_client("guarded")

    with pytest.raises(netguard.OutboundRefused):
        client.get(server.url + "/", timeout=1)

    assert server.requests == []


def test_connects_to_the_vetted_address_keeping_the_host_name(settings, server, dns):
    """The socket goes to the address that was vetted; the Host header keeps the name."""
    settings.SCORING_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    dns.answers["judge.internal.test"] = [["127.0.0.1"]]
    server.script(Reply(200, json={"ok": True}))

    response = netguard.shared_client("guarded").get(f"http://judge.internal.test:{server.port}/", timeout=1)

    assert response.json() == {"ok": True}
    assert server.requests[0].headers["host"] == f"judge.internal.test:{server.port}"


def test_dns_rebinding_between_check_and_connect_is_refused(settings, server, dns):
    """A name that passes the check and then resolves to an internal address is refused at
    connect time; nothing is sent."""
    settings.SCORING_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    dns.answers["rebind.example.test"] = [["127.0.0.1"], ["10.0.0.1"]]
    url = f"http://rebind.example.test:{server.port}/"

    netguard.check_url(url)
    with pytest.raises(netguard.OutboundRefused, match="10.0.0.1"):
        netguard.shared_client("guarded").get(url, timeout=1)

    assert server.requests == []


def test_redirects_are_not_followed(settings, server):
    """A redirect is returned to the caller, never followed."""
    settings.SCORING_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    server.script(Reply(302, body="", headers={"Location": "http://169.254.169.254/"}))

    response = netguard.shared_client("guarded").get(server.url + "/", timeout=1)

    assert response.status_code == 302
    assert len(server.requests) == 1


def test_guarded_client_ignores_proxy_environment(monkeypatch):
    """Proxy variables cannot route guarded requests around the address check."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")

    assert netguard.shared_client("guarded").trust_env is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("999999999", netguard.MAX_RETRY_AFTER), ("soon", None), (None, None)],
)
def test_retry_after_seconds(value, expected):
    """Retry-After in seconds is clamped to [0, MAX_RETRY_AFTER]; nonsense is ignored."""
    assert netguard.retry_after_seconds(value) == expected


def test_retry_after_http_date():
    """Retry-After as an HTTP date is the time until then: never more than the date is ahead, a
    later date waits longer, and a date already past waits nothing."""
    now = timezone.now()
    later, sooner = (http_date((now + timedelta(seconds=s)).timestamp()) for s in (90, 30))

    in_90 = netguard.retry_after_seconds(later)
    in_30 = netguard.retry_after_seconds(sooner)
    assert 30 >= in_30 > 0 and 90 >= in_90 > in_30
    assert netguard.retry_after_seconds(http_date((now - timedelta(seconds=30)).timestamp())) == 0


def test_redact_replaces_every_secret():
    """Secrets are replaced wherever they appear; very short strings are not treated as secrets."""
    text = "key sk-abc123 and token tok-999 and sk-abc123 again; id ab"

    assert netguard.redact(text, ["sk-abc123", "tok-999", "ab", ""]) == (
        "key [REDACTED] and token [REDACTED] and [REDACTED] again; id ab"
    )


def test_timeout_sets_every_phase(settings):
    """Requests get a read timeout and the configured connect timeout."""
    settings.SCORING_HTTP_CONNECT_TIMEOUT = 3

    assert netguard.timeout(20) == httpx.Timeout(20, connect=3)
