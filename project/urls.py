"""Root URLs: the admin (job viewer), the operators' /metrics, the API and its OpenAPI description
and docs, the pages for people."""

from csp.decorators import csp_exempt
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from scoring.api.errors import json_not_found
from scoring.api.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),  # Prometheus text, not part of the API
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    # The split view loads its start-up script from a URL, so the CSP needs no inline script.
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="openapi"), name="docs"),
    # ReDoc's page starts with an inline script that drf-spectacular gives no nonce.
    path("redoc", csp_exempt()(SpectacularRedocView.as_view(url_name="openapi")), name="redoc"),
    path("", include("scoring.api.urls")),
    path("", include("scoring.web.urls")),
    # Unknown routes answer JSON even with DEBUG on (Django's debug 404 page is HTML).
    re_path(r"^(?!static/)", json_not_found),
]

handler400 = "scoring.api.errors.json_bad_request"
handler403 = "scoring.api.errors.json_permission_denied"
handler404 = "scoring.api.errors.json_not_found"
handler500 = "scoring.api.errors.json_server_error"
