"""Routes of the scoring app, spelled as Weave's trace server spells them."""

from django.urls import path

from scoring.apis.calls_score import CallsScoreApi
from scoring.apis.service import HealthApi, ServerInfoApi

urlpatterns = [
    path("calls/score", CallsScoreApi.as_view(), name="calls-score"),
    path("server_info", ServerInfoApi.as_view(), name="server-info"),
    path("health", HealthApi.as_view(), name="health"),
]
