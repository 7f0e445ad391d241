"""Every error body is JSON, in every mode."""

import pytest
from django.test import Client


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["get", "post"])
def test_unknown_route_is_json_404(settings, debug, method):
    """An unknown route answers a JSON 404, with DEBUG on or off, and a POST is not taken for a
    CSRF failure."""
    settings.DEBUG = debug
    response = getattr(Client(enforce_csrf_checks=True), method)("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_unknown_admin_page_is_not_shadowed(client, admin_user):
    """The admin keeps its own pages; the JSON 404 only answers what nothing else routes."""
    client.force_login(admin_user)
    assert client.get("/admin/scoring/scoringjob/").status_code == 200
