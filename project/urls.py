"""Root URLs: the admin (job viewer) and the API."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("scoring.urls")),
]

handler400 = "scoring.errors.json_bad_request"
handler403 = "scoring.errors.json_permission_denied"
handler404 = "scoring.errors.json_not_found"
handler500 = "scoring.errors.json_server_error"
