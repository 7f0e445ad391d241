"""Root URLs: the admin (job viewer), the operators' /metrics, the API and its OpenAPI description
and docs."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerView

from scoring.api.errors import json_not_found
from scoring.api.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),  # Prometheus text, not part of the API
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    path("redoc", SpectacularRedocView.as_view(url_name="openapi"), name="redoc"),
    path("", include("scoring.api.urls")),
    # Unknown routes answer JSON even with DEBUG on (Django's debug 404 page is HTML).
    re_path(r"^(?!static/)", json_not_found),
]

handler400 = "scoring.api.errors.json_bad_request"
handler403 = "scoring.api.errors.json_permission_denied"
handler404 = "scoring.api.errors.json_not_found"
handler500 = "scoring.api.errors.json_server_error"
