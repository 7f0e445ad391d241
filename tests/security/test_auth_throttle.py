"""Authentication costs nothing to refuse, and guessing is throttled: API keys first, password
login on API routes off unless configured, failed attempts limited per address and per username."""

import httpx
import pytest

from tests.conftest import basic

# An authenticated route: 401 without credentials, 404 with them (no such job).
ROUTE = "/calls/score/jobs/00000000-0000-0000-0000-000000000000"


def test_password_login_on_api_routes_is_off_by_default(live_server, user):
    """A correct username and password over HTTP Basic is refused on API routes by default (the
    password hasher never runs for API requests)."""
    response = httpx.get(live_server.url + ROUTE, headers={"Authorization": basic("pw-alice", "alice")})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_api_key_works_whatever_the_username(live_server, api_key):
    """An API key is accepted as the Basic password with any username."""
    response = httpx.get(live_server.url + ROUTE, headers={"Authorization": basic(api_key, "alice")})

    assert response.status_code == 404


def test_failed_attempts_per_address_are_throttled_with_retry_after(live_server, api_key, settings):
    """After SCORING_AUTH_FAILURES_PER_ADDRESS failures from one address, further attempts from it
    get 429 with Retry-After, even with a valid key, until the window ends."""
    settings.SCORING_AUTH_FAILURES_PER_ADDRESS = 3
    with httpx.Client(base_url=live_server.url) as client:
        statuses = [client.get(ROUTE, headers={"Authorization": f"Bearer guess-{n}"}).status_code for n in range(3)]
        throttled = client.get(ROUTE, headers={"Authorization": basic(api_key)})

    assert statuses == [401, 401, 401]
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= settings.SCORING_AUTH_FAILURE_WINDOW
    assert "detail" in throttled.json()


def test_failed_passwords_per_username_are_throttled(live_server, user, settings):
    """With password login on, a username whose password was guessed wrong too often gets 429,
    even with the right password, while API keys from the same address still work."""
    settings.SCORING_API_PASSWORD_LOGIN = True
    settings.SCORING_AUTH_FAILURES_PER_USERNAME = 2
    with httpx.Client(base_url=live_server.url) as client:
        wrong = [client.get(ROUTE, headers={"Authorization": basic(f"guess{n}", "alice")}) for n in range(2)]
        right = client.get(ROUTE, headers={"Authorization": basic("pw-alice", "alice")})

    assert [r.status_code for r in wrong] == [401, 401]
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0


@pytest.mark.parametrize("header", ["Basic", "Basic !!!", "Bearer a b"])
def test_malformed_headers_count_as_failures(live_server, settings, header):
    """Malformed Authorization headers count against the address like wrong keys do."""
    settings.SCORING_AUTH_FAILURES_PER_ADDRESS = 1
    with httpx.Client(base_url=live_server.url) as client:
        first = client.get(ROUTE, headers={"Authorization": header})
        second = client.get(ROUTE, headers={"Authorization": header})

    assert (first.status_code, second.status_code) == (401, 429)
