"""The admin follows the project rule: staff who are not superusers see only their projects' rows,
job actions need the change permission, and API keys are each user's own; through a live server
with a real session login."""

import re

import httpx
import pytest
from django.contrib.auth.models import Group, Permission

from scoring.models import ApiKey, ScoringJob, ScoringTask
from scoring.services.api_keys import api_key_create
from scoring.services.jobs import job_submit
from tests import factories


def grant(user, *codenames: str):
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="scoring", codename__in=codenames))


@pytest.fixture
def alice_job(user):
    factories.call(call_id="c1")
    ref = factories.scorer()
    request = {"project_id": "alice/demo", "call_ids": ["c1"], "scorer_refs": [ref]}
    return job_submit(user=user, project_id="alice/demo", call_ids=["c1"], scorer_refs=[ref], request=request).job


@pytest.fixture
def staff_login(live_server):
    """A logged-in admin session for a user, through the real login form."""
    clients = []

    def login(user) -> httpx.Client:
        client = httpx.Client(base_url=live_server.url, timeout=30)
        clients.append(client)
        client.get("/admin/login/")
        response = client.post(
            "/admin/login/?next=/admin/",
            data={
                "username": user.username,
                "password": f"pw-{user.username}",
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )
        assert response.status_code == 302, response.text
        return client

    yield login
    for client in clients:
        client.close()


def csrf_post(client: httpx.Client, url: str, data: dict) -> httpx.Response:
    page = client.get(url)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    return client.post(
        url, data={"csrfmiddlewaretoken": token.group(1) if token else client.cookies["csrftoken"], **data}
    )


def test_view_only_staff_outside_the_group_cannot_see_or_cancel_a_job(staff_login, make_user, alice_job):
    """mallory, staff with every view permission but not in alice's group, neither lists alice's
    job, calls or tasks, nor opens the job, nor cancels it with a POST to the cancel action."""
    mallory = make_user("mallory", is_staff=True)
    grant(mallory, "view_scoringjob", "view_scoringtask", "view_call", "view_project", "view_feedback")
    client = staff_login(mallory)

    jobs = client.get("/admin/scoring/scoringjob/")
    calls = client.get("/admin/scoring/call/")
    projects = client.get("/admin/scoring/project/")
    page = client.get(f"/admin/scoring/scoringjob/{alice_job.pk}/change/")
    cancel = csrf_post(client, f"/admin/scoring/scoringjob/{alice_job.pk}/cancel/", {})

    assert jobs.status_code == 200 and str(alice_job.pk) not in jobs.text
    assert calls.status_code == 200 and "c1" not in calls.text
    assert projects.status_code == 200 and "demo" not in projects.text
    assert page.status_code in (302, 404) and str(alice_job.pk) not in page.text
    assert cancel.status_code == 404
    assert not ScoringTask.objects.filter(job=alice_job, status=ScoringTask.Status.CANCELLED).exists()


def test_view_only_staff_in_the_group_cannot_cancel(staff_login, make_user, alice_job):
    """A group member with only the view permission sees the job but its cancel action refuses."""
    member = make_user("bob", is_staff=True)
    grant(member, "view_scoringjob")
    group, _ = Group.objects.get_or_create(name="alice")
    member.groups.add(group)
    client = staff_login(member)

    assert str(alice_job.pk) in client.get("/admin/scoring/scoringjob/").text
    csrf_post(client, f"/admin/scoring/scoringjob/{alice_job.pk}/cancel/", {})

    assert not ScoringTask.objects.filter(job=alice_job, status=ScoringTask.Status.CANCELLED).exists()


def test_staff_with_change_permission_cancels_a_job_of_their_project(staff_login, user, alice_job):
    """alice, staff with the change permission, cancels her own job from the admin."""
    user.is_staff = True
    user.save()
    grant(user, "view_scoringjob", "change_scoringjob")
    client = staff_login(user)

    csrf_post(client, f"/admin/scoring/scoringjob/{alice_job.pk}/cancel/", {})

    assert ScoringJob.objects.get(pk=alice_job.pk).tasks.filter(status=ScoringTask.Status.CANCELLED).count() == 1


def test_api_key_admin_shows_and_revokes_only_own_keys(staff_login, make_user, user):
    """A staff user with API key permissions lists only their own keys, and the revoke action
    posted with another user's key id revokes nothing of theirs."""
    alice_key, _ = api_key_create(user=user, name="alice-ci")
    mallory = make_user("mallory", is_staff=True)
    grant(mallory, "view_apikey", "change_apikey")
    own_key, _ = api_key_create(user=mallory, name="mallory-own")
    client = staff_login(mallory)

    listing = client.get("/admin/scoring/apikey/")
    csrf_post(
        client, "/admin/scoring/apikey/", {"action": "revoke", "_selected_action": [str(alice_key.pk), str(own_key.pk)]}
    )

    assert "mallory-own" in listing.text and "alice-ci" not in listing.text
    assert ApiKey.objects.get(pk=alice_key.pk).revoked_at is None
    assert ApiKey.objects.get(pk=own_key.pk).revoked_at is not None
