"""`GET /metrics`: the Prometheus exposition of this host's web and worker processes, with the
tasks by state (from the database) and the queue depth (from the broker) read at scrape time."""

import logging

import dramatiq
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily

from scoring import metrics
from scoring.engine.broker import queue_depths
from scoring.selectors.metrics import jobs_unfinished, tasks_finished_by_state, tasks_unfinished_by_state

logger = logging.getLogger(__name__)


class StateCollector:
    """What the database and the broker hold, read when scraped (so by the web process only)."""

    def collect(self):
        tasks = GaugeMetricFamily("scoring_tasks", "Unfinished tasks by state (from the database).", labels=["state"])
        for state, count in tasks_unfinished_by_state().items():
            tasks.add_metric([state], count)
        yield tasks
        finished = GaugeMetricFamily(
            "scoring_finished_tasks",
            "Tasks of finished jobs by final state (the counts stamped on each job when it finished).",
            labels=["state"],
        )
        for state, count in tasks_finished_by_state().items():
            finished.add_metric([state], count)
        yield finished
        yield GaugeMetricFamily("scoring_unfinished_jobs", "Jobs not yet finished.", value=jobs_unfinished())
        try:
            depths = queue_depths(dramatiq.get_broker())
        except Exception as exc:  # a broker that does not answer is absent from the scrape
            logger.warning("Queue depth unavailable: %r", exc)
            depths = None
        up = int(depths is not None)
        yield GaugeMetricFamily("scoring_broker_up", "1 when the broker answered this scrape.", value=up)
        queue = GaugeMetricFamily(
            "scoring_queue_messages", "Messages the broker holds, by queue and state.", labels=["queue", "state"]
        )
        for (name, state), count in (depths or {}).items():
            queue.add_metric([name, state], count)
        yield queue


@require_GET
def metrics_view(request):
    allowed = metrics.scrape_allowed(request.headers.get("Authorization", ""), request.META.get("REMOTE_ADDR", ""))
    if allowed is None:
        return JsonResponse({"detail": "Not found."}, status=404)
    if not allowed:
        response = JsonResponse({"detail": "Metrics need the operators' token."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.exposition(StateCollector()), content_type=CONTENT_TYPE_LATEST)
