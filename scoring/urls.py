"""Routes of the scoring app, spelled as Weave's trace server spells them."""

from django.urls import path

from scoring.apis.calls import CallEndApi, CallReadApi, CallStartApi, CallUpsertBatchApi
from scoring.apis.calls_score import CallsScoreApi
from scoring.apis.feedback import FeedbackCreateApi, FeedbackCreateBatchApi, FeedbackQueryApi
from scoring.apis.jobs import JobCancelApi, JobDetailApi, JobRetryApi, JobTasksApi
from scoring.apis.objects import ObjCreateApi, ObjReadApi
from scoring.apis.service import HealthApi, ServerInfoApi

urlpatterns = [
    path("calls/score", CallsScoreApi.as_view(), name="calls-score"),
    path("calls/score/jobs/<uuid:job_id>", JobDetailApi.as_view(), name="job-detail"),
    path("calls/score/jobs/<uuid:job_id>/tasks", JobTasksApi.as_view(), name="job-tasks"),
    path("calls/score/jobs/<uuid:job_id>/cancel", JobCancelApi.as_view(), name="job-cancel"),
    path("calls/score/jobs/<uuid:job_id>/retry", JobRetryApi.as_view(), name="job-retry"),
    path("call/start", CallStartApi.as_view(), name="call-start"),
    path("call/end", CallEndApi.as_view(), name="call-end"),
    path("call/upsert_batch", CallUpsertBatchApi.as_view(), name="call-upsert-batch"),
    path("call/read", CallReadApi.as_view(), name="call-read"),
    path("obj/create", ObjCreateApi.as_view(), name="obj-create"),
    path("obj/read", ObjReadApi.as_view(), name="obj-read"),
    path("feedback/create", FeedbackCreateApi.as_view(), name="feedback-create"),
    path("feedback/batch/create", FeedbackCreateBatchApi.as_view(), name="feedback-create-batch"),
    path("feedback/query", FeedbackQueryApi.as_view(), name="feedback-query"),
    path("server_info", ServerInfoApi.as_view(), name="server-info"),
    path("health", HealthApi.as_view(), name="health"),
]
