"""The admin job viewer: the job list with progress and filters, a job page with its errors and
actions, escaping of what clients sent; and the same driven in a real headless Chromium."""

import os
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from scoring.engine.run import task_run
from scoring.models import ApiKey, ScoringJob, ScoringTask
from scoring.services.api_keys import api_key_create
from scoring.services.jobs import job_submit
from tests import factories
from tests.conftest import ROOT, basic

Status = ScoringTask.Status
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture
def admin_user(make_user):
    return make_user("root", is_superuser=True, is_staff=True)


def make_job(user, call_ids=("good", "bad"), project_id="alice/demo") -> ScoringJob:
    for call_id in call_ids:
        output = {"not": "a string"} if call_id.startswith("bad") else "{}"
        factories.call(project_id, call_id=call_id, output=output)
    ref = factories.scorer(project_id)
    request = {"project_id": project_id, "call_ids": list(call_ids), "scorer_refs": [ref]}
    return job_submit(user=user, project_id=project_id, call_ids=list(call_ids), scorer_refs=[ref], request=request).job


def run_all(job):
    for task_id in job.tasks.values_list("pk", flat=True):
        task_run(task_id=task_id)


@pytest.fixture
def finished_job(user):
    job = make_job(user)
    run_all(job)
    return job


def test_job_list_shows_status_and_progress(client, admin_user, finished_job):
    """The list shows each job's derived status and a progress bar of succeeded/failed/total."""
    client.force_login(admin_user)
    response = client.get("/admin/scoring/scoringjob/")
    assert response.status_code == 200
    html = response.content.decode()
    assert str(finished_job.pk) in html
    assert "partial" in html
    assert 'title="1 succeeded, 1 failed of 2"' in html


def test_job_list_does_not_count_per_row(client, admin_user, user):
    """The number of queries of the list does not grow with the number of jobs on the page."""
    client.force_login(admin_user)
    first = make_job(user, ("a1", "bad1"))
    run_all(first)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/admin/scoring/scoringjob/").status_code == 200
    for i in range(8):
        job = make_job(user, (f"x{i}", f"bad-x{i}"))
        if i % 2:
            run_all(job)
    with CaptureQueriesContext(connection) as many:
        assert client.get("/admin/scoring/scoringjob/").status_code == 200
    assert len(many) <= len(few) + 1  # one grouped count for the unfinished jobs of the page


@pytest.mark.parametrize(("status", "expected"), [("partial", True), ("succeeded", False), ("queued", False)])
def test_job_list_filters_by_status(client, admin_user, finished_job, status, expected):
    """The status filter selects jobs by their derived status."""
    client.force_login(admin_user)
    html = client.get(f"/admin/scoring/scoringjob/?status={status}").content.decode()
    assert (f"/admin/scoring/scoringjob/{finished_job.pk}/change/" in html) is expected


@pytest.mark.parametrize("term", ["job", "good", "scorer"])
def test_job_list_search_by_job_call_or_scorer(client, admin_user, finished_job, user, term):
    """Search finds a job by its id, by a call id it scored, or by a scorer ref."""
    other = make_job(user, ("other",), project_id="alice/second")
    client.force_login(admin_user)
    query = {"job": str(finished_job.pk), "good": "good", "scorer": finished_job.scorer_refs[0]}[term]
    html = client.get("/admin/scoring/scoringjob/", {"q": query}).content.decode()
    assert f"/admin/scoring/scoringjob/{finished_job.pk}/change/" in html
    assert f"/admin/scoring/scoringjob/{other.pk}/change/" not in html


def test_job_page_groups_errors_and_escapes_client_input(client, admin_user, user):
    """The job page shows counts and errors grouped by type, and renders what the client sent
    escaped."""
    job = make_job(user, ("good", "bad<script>alert(1)</script>"))
    run_all(job)
    client.force_login(admin_user)
    html = client.get(f"/admin/scoring/scoringjob/{job.pk}/change/").content.decode()
    assert 'id="job-status">partial<' in html
    assert "TypeError" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_retry_failed_from_the_job_page(client, admin_user, finished_job):
    """The "retry failed tasks" action queues the failed tasks again, as the API does."""
    client.force_login(admin_user)
    response = client.post(f"/admin/scoring/scoringjob/{finished_job.pk}/retry/")
    assert response.status_code == 302
    assert finished_job.tasks.filter(status=Status.PENDING).count() == 1
    assert finished_job.tasks.filter(status=Status.SUCCEEDED).count() == 1


def test_cancel_from_the_job_page(client, admin_user, user):
    """The "cancel" action cancels what has not run."""
    job = make_job(user)
    client.force_login(admin_user)
    client.post(f"/admin/scoring/scoringjob/{job.pk}/cancel/")
    assert set(job.tasks.values_list("status", flat=True)) == {Status.CANCELLED}


def test_admin_is_read_only(client, admin_user, finished_job):
    """Jobs cannot be added, edited or deleted in the admin."""
    client.force_login(admin_user)
    assert client.get("/admin/scoring/scoringjob/add/").status_code == 403
    assert client.post(f"/admin/scoring/scoringjob/{finished_job.pk}/delete/").status_code == 403


@pytest.mark.slow
def test_admin_in_a_real_browser(chromium, live_server, admin_user, user, transactional_db):
    """In headless Chromium: log in, open the job list, open a job, retry its failed tasks, and
    keep a screenshot of the job page."""
    from playwright.sync_api import sync_playwright

    job = make_job(user)
    run_all(job)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page()
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "root")
        page.fill("#id_password", "pw-root")
        page.click("input[type=submit]")
        page.goto(f"{live_server.url}/admin/scoring/scoringjob/")
        page.click(f"a[href$='/admin/scoring/scoringjob/{job.pk}/change/']")
        page.wait_for_selector("#job-summary")
        status_before = page.inner_text("#job-status")
        page.click("#retry-failed")
        page.wait_for_selector(".messagelist")
        message = page.inner_text(".messagelist")
        page.screenshot(path=str(ARTIFACTS / "admin-job-page.png"), full_page=True)
        status_after = page.inner_text("#job-status")
        browser.close()
    assert status_before == "partial"
    assert "1 task(s) queued again." in message
    assert status_after == "running"
    assert job.tasks.filter(status=Status.PENDING).count() == 1
    assert (ARTIFACTS / "admin-job-page.png").stat().st_size > 10_000


def test_admin_lists_monitor_versions_with_their_counts(client, admin_user, user):
    """The monitor versions page shows each version's matched, sampled-out and scored counts."""
    from scoring.models import MonitorVersion, Object, ScoringJob
    from tests import factories

    monitor = Object.objects.create(
        project=factories.project(), object_id="json-check", digest="d1", version_index=0, val={}
    )
    job = ScoringJob.objects.create(project=monitor.project, user=user, wb_user_id="w", request={}, source="monitor")
    MonitorVersion.objects.create(monitor=monitor, job=job, matched=7, sampled_out=3)
    client.force_login(admin_user)
    response = client.get("/admin/scoring/monitorversion/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "json-check" in body
    assert '<td class="field-matched">7</td>' in body
    assert '<td class="field-sampled_out">3</td>' in body


def test_revoke_action_stops_a_key_authenticating(client, admin_user, user):
    """An operator signed in to the admin revokes a key with the "Revoke" action: the key, which
    authenticated a moment before, is refused with 401 from then on."""
    api_key, key = api_key_create(user=user, name="laptop")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=basic(key))
    query = {"project_id": "alice/demo"}
    assert api.post("/feedback/query", query, format="json").status_code == 200
    assert client.login(username="root", password="pw-root")

    response = client.post(
        reverse("admin:scoring_apikey_changelist"), {"action": "revoke", "_selected_action": [api_key.pk]}
    )

    assert response.status_code == 302
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    assert api.post("/feedback/query", query, format="json").status_code == 401
