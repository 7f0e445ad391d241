"""Root URLs: the admin (job viewer), the API and its OpenAPI description and docs."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from scoring.api.errors import json_not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    # The split view serves its start-up script as a file: the CSP allows no inline scripts.
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="openapi"), name="docs"),
    path("redoc", SpectacularRedocView.as_view(url_name="openapi"), name="redoc"),
    path("", include("scoring.api.urls")),
    # Unknown routes answer JSON even with DEBUG on (Django's debug 404 page is HTML).
    re_path(r"^(?!static/)", json_not_found),
]

handler400 = "scoring.api.errors.json_bad_request"
handler403 = "scoring.api.errors.json_permission_denied"
handler404 = "scoring.api.errors.json_not_found"
handler500 = "scoring.api.errors.json_server_error"
