"""Authentication (Basic with an API key or a password, Bearer, session with CSRF) and the project
access rule, checked on `POST /calls/score`."""

import base64

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from rest_framework.test import APIClient

from scoring.models import ApiKey
from scoring.services.api_keys import api_key_create, api_key_revoke, hash_key
from tests import factories
from tests.conftest import basic

URL = "/calls/score"


@pytest.fixture
def ref(db):
    factories.call(call_id="c0")
    return factories.scorer()


def body(project_id="alice/demo", ref=None):
    return {"project_id": project_id, "call_ids": ["c0"], "scorer_refs": [ref] if ref else []}


def post(client, data):
    return client.post(URL, data, format="json")


def test_no_credentials_is_401_with_www_authenticate(db):
    """A request without credentials is a 401 that says how to authenticate."""
    response = post(APIClient(), body())
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert "detail" in response.json()


def test_basic_with_api_key_any_username(user, api_key, ref):
    """HTTP Basic with the API key as password works whatever the username (Weave sends api:<key>)."""
    for username in ("api", "someone", ""):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=basic(api_key, username))
        assert post(client, body(ref=ref)).status_code == 200


def test_basic_with_username_and_password(user, ref, settings):
    """With SCORING_API_PASSWORD_LOGIN on, HTTP Basic with a Django username and password works."""
    settings.SCORING_API_PASSWORD_LOGIN = True
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("pw-alice", "alice"))
    assert post(client, body(ref=ref)).status_code == 200


def test_basic_with_wrong_key_is_401(user, ref):
    """A wrong key or password is a 401."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("not-a-key", "alice"))
    response = post(client, body(ref=ref))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "header",
    ["Basic", "Basic !!!notbase64", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer", "Bearer a b"],
)
def test_malformed_authorization_is_401(db, header):
    """A malformed Authorization header is a 401, never a 500."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert post(client, body()).status_code == 401


def test_bearer_api_key(user, api_key, ref):
    """`Authorization: Bearer <key>` works."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert post(client, body(ref=ref)).status_code == 200


def test_revoked_key_is_401(user, ref):
    """A revoked key no longer authenticates."""
    row, key = api_key_create(user=user)
    api_key_revoke(api_key=row)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert post(client, body(ref=ref)).status_code == 401


def test_inactive_user_key_is_401(user, api_key, ref):
    """A key of a deactivated user no longer authenticates."""
    user.is_active = False
    user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert post(client, body(ref=ref)).status_code == 401


def test_keys_are_stored_only_as_hashes(user):
    """The key itself is never stored: only its SHA-256 and a short prefix."""
    row, key = api_key_create(user=user)
    row.refresh_from_db()
    assert row.key_hash == hash_key(key)
    assert key not in {row.key_hash, row.prefix, row.name}
    assert len(key) == 40 and row.prefix == key[:8]


def test_key_use_is_recorded(user, api_key, ref):
    """Using a key sets its last_used_at."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    post(client, body(ref=ref))
    assert ApiKey.objects.get(key_hash=hash_key(api_key)).last_used_at is not None


def test_session_requires_csrf(user, ref):
    """Session auth works, and enforces CSRF for unsafe methods."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert post(client, body(ref=ref)).status_code == 403
    client.get("/admin/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(URL, body(ref=ref), format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content


def test_other_users_project_is_403(make_user, client_for, ref):
    """bob may not act on alice's project."""
    bob = make_user("bob")
    response = post(client_for(bob), body(ref=ref))
    assert response.status_code == 403
    assert "alice/demo" in response.json()["detail"]


def test_group_member_may_act_on_group_project(make_user, client_for, db):
    """A member of Django Group E may act on projects of entity E."""
    factories.call("team/demo", call_id="c0")
    team_ref = factories.scorer("team/demo")
    carol = make_user("carol")
    assert post(client_for(carol), body("team/demo", team_ref)).status_code == 403
    carol.groups.add(Group.objects.create(name="team"))
    assert post(client_for(carol), body("team/demo", team_ref)).status_code == 200


def test_superuser_may_act_on_any_project(make_user, client_for, ref):
    """A superuser may act on any project."""
    root = make_user("root", is_superuser=True, is_staff=True)
    assert post(client_for(root), body(ref=ref)).status_code == 200


def test_createapikey_prints_a_working_key(user, capsys, ref):
    """`manage.py createapikey alice` prints a key that authenticates as alice."""
    call_command("createapikey", "alice", "--name", "laptop")
    key = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(key))
    assert post(client, body(ref=ref)).status_code == 200
    assert ApiKey.objects.filter(user=user, name="laptop").count() == 1
