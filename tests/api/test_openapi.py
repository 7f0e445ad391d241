"""`GET /openapi.json` documents every endpoint we serve, `/calls/score` exactly as its contract
does (descriptions aside), and `GET /docs` renders it with assets served by this server."""

import os
import re
from pathlib import Path

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.urls import URLPattern, URLResolver, get_resolver

from scoring.api.errors import json_not_found

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "contract" / "calls-score.openapi.yaml"  # the project's own spec
PUBLISHED_CONTRACT = ROOT.parent / "shared" / "contract" / "calls-score.openapi.yaml"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/openapi.json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def contract():
    return yaml.safe_load(CONTRACT.read_text())


def without_descriptions(value):
    if isinstance(value, dict):
        return {key: without_descriptions(item) for key, item in value.items() if key != "description"}
    if isinstance(value, list):
        return [without_descriptions(item) for item in value]
    return value


def api_routes() -> set[str]:
    """Every API route, spelled as OpenAPI spells paths (`{param}`); the admin, the docs, the pages
    for people, the operators' /metrics (Prometheus text) and the JSON 404 for unknown routes aside."""
    routes = set()

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver) and getattr(pattern.urlconf_name, "__name__", "") == "scoring.web.urls":
                continue
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and pattern.callback is not json_not_found:
                routes.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))

    walk(get_resolver().url_patterns, "")
    aside = {"/openapi.json", "/docs", "/redoc", "/metrics"}
    return {r for r in routes if not r.startswith("/admin/") and r not in aside}


def test_every_route_is_documented(schema):
    """Each API route we serve has a path in the description, and nothing else does."""
    assert set(schema["paths"]) == api_routes()


def test_calls_score_operation_is_the_contracts(schema, contract):
    """/calls/score has the contract's request body, 200 and 422 responses, security and id."""
    ours = without_descriptions(schema["paths"]["/calls/score"]["post"])
    theirs = without_descriptions(contract["paths"]["/calls/score"]["post"])
    for key in ("requestBody", "responses", "security", "operationId", "tags"):
        assert ours[key] == theirs[key], key


def test_calls_score_components_are_the_contracts(schema, contract):
    """CallsScoreReq, HTTPValidationError and ValidationError are the contract's; CallsScoreRes
    is too, with the fields the contract allows to be added (job_id, task_count)."""
    ours = without_descriptions(schema["components"]["schemas"])
    theirs = without_descriptions(contract["components"]["schemas"])
    for name in ("CallsScoreReq", "HTTPValidationError", "ValidationError"):
        assert ours[name] == theirs[name], name
    added = ours["CallsScoreRes"].pop("properties")
    assert theirs["CallsScoreRes"].pop("properties") == {}
    assert ours["CallsScoreRes"] == theirs["CallsScoreRes"]
    assert set(added) == {"job_id", "task_count"}


def test_security_schemes_are_the_contracts(schema, contract):
    """The security schemes are HTTPBasic and HTTPBearer, as in the contract."""
    assert schema["components"]["securitySchemes"] == contract["components"]["securitySchemes"]


def test_every_write_documents_the_422(schema):
    """Every POST documents its 422 as an HTTPValidationError."""
    ref = {"$ref": "#/components/schemas/HTTPValidationError"}
    for path, operations in schema["paths"].items():
        if "post" in operations:
            assert operations["post"]["responses"]["422"]["content"]["application/json"]["schema"] == ref, path


def test_weave_bodies_are_typed(schema):
    """Request bodies carry their fields' JSON types (e.g. a call start's fields)."""
    started = schema["components"]["schemas"]["StartedCall"]["properties"]
    assert started["started_at"]["format"] == "date-time"
    assert started["inputs"]["type"] == "object"
    assert started["op_name"]["type"] == "string"
    stream = schema["paths"]["/calls/stream_query"]["post"]["responses"]["200"]["content"]
    assert list(stream) == ["application/jsonl"]


def test_docs_page_uses_only_local_assets(client, db):
    """/docs is Swagger UI whose scripts and styles come from this server's static files, and
    whose start-up script (served apart, no inline script) loads /openapi.json."""
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    assert all(not asset.startswith(("http:", "https:", "//")) for asset in assets), assets
    for asset in assets:
        if asset.startswith("/static/"):
            assert finders.find(asset.removeprefix("/static/")), asset
    assert "<script>" not in html
    assert "/openapi.json" in client.get("/docs?script=").content.decode()


@pytest.mark.slow
def test_docs_render_in_a_browser_offline(chromium, live_server):
    """In headless Chromium with every request outside this server blocked, /docs renders the
    operations, /calls/score among them."""
    from playwright.sync_api import sync_playwright

    outside = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()

        def only_here(route):
            if route.request.url.startswith(live_server.url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_here)
        page.goto(f"{live_server.url}/docs")
        page.wait_for_selector('.opblock-summary-path[data-path="/calls/score"]', timeout=15_000)
        page.screenshot(path=str(ARTIFACTS / "docs.png"))
        operations = page.locator(".opblock").count()
        browser.close()
    assert outside == []
    assert operations >= 20


@pytest.mark.skipif(
    not PUBLISHED_CONTRACT.exists(), reason=f"no published contract beside the clone ({PUBLISHED_CONTRACT})"
)
def test_vendored_contract_is_the_published_one():
    """The contract kept in docs/contract/ is, byte for byte, the one published beside the clone."""
    assert CONTRACT.read_bytes() == PUBLISHED_CONTRACT.read_bytes()
