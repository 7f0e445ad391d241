"""Prometheus instruments of web and worker processes, and one recording function per event;
aggregated over processes through prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR)."""

import hmac
import ipaddress
import logging
import os
import threading
from collections import Counter as Tally
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

logger = logging.getLogger(__name__)

# Its own registry: the scrape assembles a fresh one (scoring.api.metrics), with these instruments
# read either from this process or, in multiprocess mode, from every process's files.
INSTRUMENTS = CollectorRegistry(auto_describe=True)

# From 100 µs (built-in scorers) to the 300 s time limit of LLM judges.
LATENCY_BUCKETS = (0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

SCORER_SECONDS = Histogram(
    "scoring_scorer_duration_seconds",
    "Time one scorer took to score one pair, by scorer class (observed in the workers).",
    ["scorer_class"],
    buckets=LATENCY_BUCKETS,
    registry=INSTRUMENTS,
)
RESULTS = Counter(
    "scoring_task_results",
    "Task results recorded by the workers, by scorer class and final status.",
    ["scorer_class", "status"],
    registry=INSTRUMENTS,
)
RETRIES = Counter(
    "scoring_task_retries",
    "Tasks put back to wait for another attempt (a transient failure, a time limit, a call still "
    "running), by error type.",
    ["error_type"],
    registry=INSTRUMENTS,
)
LEASE_TAKEOVERS = Counter(
    "scoring_lease_takeovers",
    "Claims of a running task whose lease had expired (its worker died or hung).",
    registry=INSTRUMENTS,
)
PROVIDER_REQUESTS = Counter(
    "scoring_provider_requests",
    "Requests to LLM providers that got an answer, by provider and HTTP status.",
    ["provider", "status"],
    registry=INSTRUMENTS,
)
PROVIDER_ERRORS = Counter(
    "scoring_provider_errors",
    "Failed provider requests (retryable or not, with or without an answer), by provider and error type.",
    ["provider", "error_type"],
    registry=INSTRUMENTS,
)
RECONCILER_RUNS = Counter("scoring_reconciler_runs", "Reconciler passes.", registry=INSTRUMENTS)
RECONCILER_REQUEUED = Counter(
    "scoring_reconciler_requeued_tasks",
    "Unfinished tasks the reconciler enqueued again (nothing would have run them).",
    registry=INSTRUMENTS,
)
RECONCILER_STAMPED = Counter(
    "scoring_reconciler_stamped_jobs",
    "Finished jobs the reconciler stamped (their last worker stopped before the stamp).",
    registry=INSTRUMENTS,
)

# A labelled child costs a lookup of ~10 µs in multiprocess mode; they are few, so kept here.
_children: dict[tuple, object] = {}
_children_lock = threading.Lock()


def _child(metric, *labels):
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        with _children_lock:
            child = _children[key] = metric.labels(*labels)
    return child


def results_recorded(results: Iterable[tuple[str, str, float | None]], *, takeovers: int = 0) -> None:
    """Count a batch of recorded results, each (scorer class, status, seconds the scorer took or
    None when it did not run), and the lease takeovers among its claims. Called once per batch:
    an increment in multiprocess mode writes a shared file under a lock (~5-10 µs)."""
    statuses: Tally = Tally()
    buckets: Tally = Tally()
    sums: Tally = Tally()
    for scorer_class, status, seconds in results:
        scorer_class = scorer_class or "unknown"
        statuses[scorer_class, status] += 1
        if seconds is not None:
            sums[scorer_class] += seconds
            buckets[scorer_class, _bucket(seconds)] += 1
    for (scorer_class, status), count in statuses.items():
        _child(RESULTS, scorer_class, status).inc(count)
    for scorer_class, total in sums.items():
        _child(SCORER_SECONDS, scorer_class)._sum.inc(total)
    # Histogram.observe adds one to one bucket (they are summed at exposition); the same per bucket
    # with the batch's count (prometheus-client is pinned: these are its own fields).
    for (scorer_class, index), count in buckets.items():
        _child(SCORER_SECONDS, scorer_class)._buckets[index].inc(count)
    if takeovers:
        LEASE_TAKEOVERS.inc(takeovers)


def _bucket(seconds: float) -> int:
    for index, bound in enumerate(LATENCY_BUCKETS):
        if seconds <= bound:
            return index
    return len(LATENCY_BUCKETS)  # +Inf


def task_retry(error_type: str) -> None:
    _child(RETRIES, error_type or "unknown").inc()


def lease_takeover() -> None:
    LEASE_TAKEOVERS.inc()


def provider_request(provider: str, status: int) -> None:
    _child(PROVIDER_REQUESTS, provider, str(status)).inc()


def provider_error(provider: str, error_type: str) -> None:
    _child(PROVIDER_ERRORS, provider, error_type or "unknown").inc()


def reconciled(*, requeued: int, stamped: int) -> None:
    RECONCILER_RUNS.inc()
    if requeued:
        RECONCILER_REQUEUED.inc(requeued)
    if stamped:
        RECONCILER_STAMPED.inc(stamped)


def multiprocess_dir() -> str | None:
    """Where the processes of this host write their values (read by prometheus-client at import)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(*collectors) -> bytes:
    """The text exposition of the instruments (every process of the host's, in multiprocess mode)
    and of the given scrape-time collectors."""
    registry = CollectorRegistry(auto_describe=True)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Instruments())
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


class _Instruments:
    """This process's instruments, as one collector of another registry."""

    def collect(self):
        return INSTRUMENTS.collect()


def scrape_allowed(authorization: str, address: str) -> bool | None:
    """Whether a scraper may read the metrics: True with `Bearer <SCORING_METRICS_TOKEN>` or from
    an address in SCORING_METRICS_ALLOWLIST, False otherwise, None when neither is set (off)."""
    token, allowlist = settings.SCORING_METRICS_TOKEN, settings.SCORING_METRICS_ALLOWLIST
    if not token and not allowlist:
        return None
    if token and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(entry, strict=False) for entry in allowlist)


def _worker_app(environ, start_response):
    """The worker host's /metrics: the instruments of every process of the host, nothing else
    (the database and the broker are the web server's to read)."""
    allowed = scrape_allowed(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR", ""))
    if environ.get("PATH_INFO") != "/metrics" or allowed is None:
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"detail": "Not found."}']
    if not allowed:
        start_response("401 Unauthorized", [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer")])
        return [b'{"detail": "Metrics need the operators\' token."}']
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [exposition()]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # a scrape every few seconds is not worth a log line
        pass


_exporter: WSGIServer | None = None


def worker_exporter_ensure() -> None:
    """Serve the host's metrics on SCORING_METRICS_PORT from this worker process, unless another
    process of the host already does (the port is taken); called by every worker process's
    housekeeping, so that another takes over within a heartbeat when the serving one stops."""
    global _exporter
    port = settings.SCORING_METRICS_PORT
    if not port or _exporter is not None:
        return
    try:
        server = make_server(settings.SCORING_METRICS_HOST, port, _worker_app, _Server, _QuietHandler)
    except OSError:
        return
    _exporter = server
    threading.Thread(target=server.serve_forever, name="scoring-metrics", daemon=True).start()
    logger.info("Serving this host's metrics on %s:%d/metrics", settings.SCORING_METRICS_HOST, port)
