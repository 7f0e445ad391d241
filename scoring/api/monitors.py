"""Monitors: per version counts and latency (`GET /monitors/<entity>/<project>[/<name>]`) and
backfill (`POST /monitors/backfill`)."""

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import (
    IsoDateTimeField,
    StrictBooleanField,
    StrictListField,
    StrictObjectSerializer,
    StrictStringField,
)
from scoring.selectors.monitors import monitor_names, monitor_stats
from scoring.services.monitors import monitor_backfill


def _version(stats) -> dict:
    out = asdict(stats)
    out["job_id"] = str(stats.job_id) if stats.job_id else None
    out["scored"] = stats.tasks.get("succeeded", 0)
    out["failed"] = stats.tasks.get("failed", 0)
    return out


class MonitorListApi(APIView):
    @extend_schema(operation_id="monitors_list")
    def get(self, request, entity: str, project: str):
        project_id = f"{entity}/{project}"
        names = monitor_names(user=request.user, project_id=project_id)
        monitors = []
        for name in names:
            versions = monitor_stats(user=request.user, project_id=project_id, name=name)
            monitors.append({"name": name, "latest": _version(versions[0])})
        return Response({"project_id": project_id, "monitors": monitors})


class MonitorDetailApi(APIView):
    @extend_schema(operation_id="monitor_versions")
    def get(self, request, entity: str, project: str, name: str):
        versions = monitor_stats(user=request.user, project_id=f"{entity}/{project}", name=name)
        return Response({"name": name, "versions": [_version(v) for v in versions]})


class MonitorBackfillApi(APIView):
    class InputSerializer(StrictObjectSerializer):
        project_id = StrictStringField()
        monitor_ref = StrictStringField(required=False, allow_null=True)
        scorer_refs = StrictListField(child=StrictStringField(), required=False, allow_null=True)
        ended_after = IsoDateTimeField(required=False, allow_null=True)
        ended_before = IsoDateTimeField(required=False, allow_null=True)
        rescore = StrictBooleanField(required=False, default=False)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        submitted = monitor_backfill(
            user=request.user,
            project_id=data["project_id"],
            monitor_ref=data.get("monitor_ref"),
            scorer_refs=data.get("scorer_refs"),
            ended_after=data.get("ended_after"),
            ended_before=data.get("ended_before"),
            rescore=data.get("rescore") or False,
        )
        return Response({"job_id": str(submitted.job.pk), "task_count": submitted.task_count})
