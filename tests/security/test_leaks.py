"""Smaller leaks: feedback ids and refs stay inside their project; production settings refuse a
weak SECRET_KEY and pass `check --deploy` with the HTTPS variables the README documents."""

import uuid

import pytest

from tests.conftest import manage
from tests.security.conftest import PROJECT

STRONG_KEY = "k" + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"


def feedback(project: str, **extra) -> dict:
    return {
        "project_id": project,
        "weave_ref": f"weave:///{project}/call/c1",
        "feedback_type": "note",
        "payload": {"note": "x"},
        **extra,
    }


def test_feedback_id_of_another_project_is_answered_like_any_unavailable_id(http, client_for, make_user):
    """An id used in bob's project gets the same answer as an id clashing in alice's own: it does
    not say the id exists."""
    bob = client_for(make_user("bob"))
    taken_elsewhere, taken_here = str(uuid.uuid4()), str(uuid.uuid4())
    assert bob.post("/feedback/create", feedback("bob/private", id=taken_elsewhere), format="json").status_code == 200
    assert http.post("/feedback/create", json=feedback(PROJECT, id=taken_here)).status_code == 200

    elsewhere = http.post("/feedback/create", json=feedback(PROJECT, id=taken_elsewhere, payload={"n": 1}))
    here = http.post("/feedback/create", json=feedback(PROJECT, id=taken_here, payload={"n": 1}))

    assert elsewhere.status_code == here.status_code == 422
    strip = lambda r, i: r.json()["detail"][0]["msg"].replace(i, "<id>")  # noqa: E731
    assert strip(elsewhere, taken_elsewhere) == strip(here, taken_here)
    assert "exist" not in elsewhere.text


@pytest.mark.parametrize("field", ["call_ref", "runnable_ref", "trigger_ref"])
def test_feedback_refs_into_another_project_are_refused(http, field):
    """A feedback row's call_ref, runnable_ref or trigger_ref must point into its own project."""
    response = http.post("/feedback/create", json=feedback(PROJECT, **{field: "weave:///bob/private/call/x"}))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


def production_env(**extra) -> dict:
    return {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "scoring.example.com",
        "SECRET_KEY": STRONG_KEY,
        **extra,
    }


def test_weak_secret_key_is_refused_in_production(db):
    """With DEBUG off, a short SECRET_KEY stops the program at start-up with a clear message."""
    result = manage("check", env=production_env(SECRET_KEY="changeme"))

    assert result.returncode != 0 and "SECRET_KEY is too weak" in result.stderr


def test_check_deploy_is_clean_with_the_documented_https_settings(db):
    """`manage.py check --deploy --fail-level WARNING` passes with the README's HTTPS variables."""
    env = production_env(
        SECURE_SSL_REDIRECT="1",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        SECURE_HSTS_PRELOAD="1",
        SESSION_COOKIE_SECURE="1",
        CSRF_COOKIE_SECURE="1",
    )

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr


def test_pages_carry_a_content_security_policy(live_server):
    """Every answer carries a CSP that forbids inline scripts and framing."""
    import httpx

    policy = httpx.get(f"{live_server.url}/health").headers["Content-Security-Policy"]

    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy
