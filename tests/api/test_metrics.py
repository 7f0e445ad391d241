"""`GET /metrics` over real HTTP: off unless a token or an allowlist is set, refused without the
token, and the sample Grafana dashboard uses only metric names the exposition has."""

import json
import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT

TOKEN = "operators-only"
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"


@pytest.fixture
def metrics_url(live_server):
    return live_server.url + "/metrics"


def test_metrics_do_not_exist_unless_configured(metrics_url, settings):
    """With neither SCORING_METRICS_TOKEN nor SCORING_METRICS_ALLOWLIST the endpoint is a JSON 404."""
    settings.SCORING_METRICS_TOKEN, settings.SCORING_METRICS_ALLOWLIST = "", []
    response = httpx.get(metrics_url)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_metrics_refuse_a_scraper_without_the_token(metrics_url, settings, authorization):
    """A missing or wrong token is a 401 with WWW-Authenticate, and shows no metric."""
    settings.SCORING_METRICS_TOKEN = TOKEN
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(metrics_url, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "scoring_" not in response.text


def test_metrics_answer_the_token_in_prometheus_text_format(metrics_url, settings, transactional_db):
    """With the token the exposition is Prometheus text, with the tasks by state from the database."""
    settings.SCORING_METRICS_TOKEN = TOKEN
    response = httpx.get(metrics_url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert {sample.labels["state"]: sample.value for sample in families["scoring_tasks"].samples} == {
        "pending": 0,
        "queued": 0,
        "running": 0,
        "waiting": 0,
    }


@pytest.mark.parametrize(("allowlist", "status"), [(["127.0.0.0/8"], 200), (["10.0.0.0/8", "192.168.1.7"], 401)])
def test_metrics_allowlist_admits_listed_addresses_without_a_token(
    metrics_url, settings, transactional_db, allowlist, status
):
    """An address in SCORING_METRICS_ALLOWLIST scrapes without a token; any other needs it."""
    settings.SCORING_METRICS_TOKEN, settings.SCORING_METRICS_ALLOWLIST = TOKEN, allowlist
    assert httpx.get(metrics_url).status_code == status


def _exposed_names(text: str) -> set[str]:
    """The sample names a query may use, from each family's name and type in an exposition."""
    suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"]}
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, [""]))
    return names


def test_every_dashboard_query_uses_exported_metric_names(metrics_url, settings, transactional_db):
    """Each metric an expression of docs/grafana-dashboard.json names is in the exposition, and
    every family the service exports is on the dashboard."""
    settings.SCORING_METRICS_TOKEN = TOKEN
    exposed = _exposed_names(httpx.get(metrics_url, headers={"Authorization": f"Bearer {TOKEN}"}).text)
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\bscoring_[a-z0-9_]+", expr)}
    assert exprs and used
    assert sorted(used - exposed) == []
    exported = {_family(name) for name in exposed if name.startswith("scoring_")}
    assert sorted(exported - {_family(name) for name in used}) == []


def _family(sample_name: str) -> str:
    return re.sub(r"_(total|created|bucket|sum|count)$", "", sample_name)
