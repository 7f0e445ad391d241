"""Routes of the scoring app, spelled as Weave's trace server spells them."""

from django.urls import path

from scoring.api.budgets import ProjectBudgetApi
from scoring.api.calls import CallEndApi, CallReadApi, CallStartApi, CallUpsertBatchApi
from scoring.api.calls_query import CallsQueryStatsApi, CallsStreamQueryApi
from scoring.api.calls_score import CallsScoreApi, CallsScoreEstimateApi
from scoring.api.feedback import FeedbackCreateApi, FeedbackCreateBatchApi, FeedbackQueryApi
from scoring.api.files import FileContentApi, FileCreateApi
from scoring.api.jobs import JobCancelApi, JobDetailApi, JobRetryApi, JobTasksApi
from scoring.api.monitors import MonitorBackfillApi, MonitorDetailApi, MonitorListApi
from scoring.api.objects import ObjCreateApi, ObjReadApi
from scoring.api.objects_query import ObjsQueryApi
from scoring.api.refs import RefsReadBatchApi
from scoring.api.service import HealthApi, ServerInfoApi
from scoring.api.tables import TableCreateApi, TableQueryApi, TableQueryStatsApi
from scoring.api.wandb_graphql import GraphqlApi
from scoring.api.weave_v2 import CallsCompleteApi, V2CallEndApi, V2CallStartApi

urlpatterns = [
    path("calls/score", CallsScoreApi.as_view(), name="calls-score"),
    path("calls/score/estimate", CallsScoreEstimateApi.as_view(), name="calls-score-estimate"),
    path("calls/score/budgets/<str:entity>/<str:project>", ProjectBudgetApi.as_view(), name="project-budget"),
    path("calls/score/jobs/<uuid:job_id>", JobDetailApi.as_view(), name="job-detail"),
    path("calls/score/jobs/<uuid:job_id>/tasks", JobTasksApi.as_view(), name="job-tasks"),
    path("calls/score/jobs/<uuid:job_id>/cancel", JobCancelApi.as_view(), name="job-cancel"),
    path("calls/score/jobs/<uuid:job_id>/retry", JobRetryApi.as_view(), name="job-retry"),
    path("monitors/backfill", MonitorBackfillApi.as_view(), name="monitor-backfill"),
    path("monitors/<str:entity>/<str:project>", MonitorListApi.as_view(), name="monitor-list"),
    path("monitors/<str:entity>/<str:project>/<str:name>", MonitorDetailApi.as_view(), name="monitor-detail"),
    path("call/start", CallStartApi.as_view(), name="call-start"),
    path("call/end", CallEndApi.as_view(), name="call-end"),
    path("call/upsert_batch", CallUpsertBatchApi.as_view(), name="call-upsert-batch"),
    path("call/read", CallReadApi.as_view(), name="call-read"),
    path("calls/stream_query", CallsStreamQueryApi.as_view(), name="calls-stream-query"),
    path("calls/query_stats", CallsQueryStatsApi.as_view(), name="calls-query-stats"),
    path("v2/<str:entity>/<str:project>/calls/complete", CallsCompleteApi.as_view(), name="v2-calls-complete"),
    path("v2/<str:entity>/<str:project>/call/start", V2CallStartApi.as_view(), name="v2-call-start"),
    path("v2/<str:entity>/<str:project>/call/end", V2CallEndApi.as_view(), name="v2-call-end"),
    path("obj/create", ObjCreateApi.as_view(), name="obj-create"),
    path("obj/read", ObjReadApi.as_view(), name="obj-read"),
    path("objs/query", ObjsQueryApi.as_view(), name="objs-query"),
    path("refs/read_batch", RefsReadBatchApi.as_view(), name="refs-read-batch"),
    path("file/create", FileCreateApi.as_view(), name="file-create"),
    path("file/content", FileContentApi.as_view(), name="file-content"),
    path("table/create", TableCreateApi.as_view(), name="table-create"),
    path("table/query", TableQueryApi.as_view(), name="table-query"),
    path("table/query_stats", TableQueryStatsApi.as_view(), name="table-query-stats"),
    path("graphql", GraphqlApi.as_view(), name="graphql"),
    path("feedback/create", FeedbackCreateApi.as_view(), name="feedback-create"),
    path("feedback/batch/create", FeedbackCreateBatchApi.as_view(), name="feedback-create-batch"),
    path("feedback/query", FeedbackQueryApi.as_view(), name="feedback-query"),
    path("server_info", ServerInfoApi.as_view(), name="server-info"),
    path("health", HealthApi.as_view(), name="health"),
]
