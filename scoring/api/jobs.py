"""Scoring jobs: progress, tasks, cancel and retry (`/calls/score/jobs/<job_id>...`)."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.errors import flatten_drf_errors
from scoring.errors import RequestValidationError
from scoring.models import ScoringTask
from scoring.selectors.costs import job_costs, job_waiting_reasons
from scoring.selectors.jobs import job_for_user, job_progress, job_tasks
from scoring.services.jobs import job_cancel, job_retry_failed
from scoring.weave.refs import call_ref_uri, object_ref_uri

MAX_PAGE = 1_000


def job_representation(job) -> dict:
    progress = job_progress(job_id=job.pk)
    return {
        "job_id": str(job.pk),
        "project_id": job.project.project_id,
        "status": progress.status,
        "counts": {**progress.counts, "total": progress.total},
        "requested_by": job.user.get_username(),
        "wb_user_id": job.wb_user_id,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "duration_seconds": (job.finished_at - job.created_at).total_seconds() if job.finished_at else None,
        "scorer_refs": job.scorer_refs,
        "request": job.request,
        "cost": job_costs(job=job),
        "waiting_reasons": job_waiting_reasons(job_id=job.pk),
    }


class JobDetailApi(APIView):
    def get(self, request, job_id):
        return Response(job_representation(job_for_user(user=request.user, job_id=job_id)))


class JobTasksApi(APIView):
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=ScoringTask.Status.values, required=False)
        after = serializers.IntegerField(required=False, min_value=0)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE, default=100)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        call_id = serializers.CharField(source="call.call_id")
        status = serializers.CharField()
        attempts = serializers.IntegerField()
        error_type = serializers.CharField()
        error_message = serializers.CharField()
        started_at = serializers.DateTimeField()
        finished_at = serializers.DateTimeField()
        retry_at = serializers.DateTimeField()
        scoring_call_id = serializers.CharField()
        cost_usd = serializers.FloatField()
        feedback_id = serializers.SerializerMethodField()

        def get_feedback_id(self, task) -> str | None:
            feedback = getattr(task, "feedback", None)
            return str(feedback.id) if feedback is not None else None

    def get(self, request, job_id):
        job = job_for_user(user=request.user, job_id=job_id)
        params = self.InputSerializer(data=request.query_params)
        if not params.is_valid():
            raise RequestValidationError(flatten_drf_errors(params.errors, ("query",)))
        limit = params.validated_data["limit"]
        tasks = job_tasks(
            job_id=job.pk,
            status=params.validated_data.get("status"),
            after=params.validated_data.get("after"),
            limit=limit,
        )
        project_id = job.project.project_id
        rows = []
        for task, row in zip(tasks, self.OutputSerializer(tasks, many=True).data, strict=True):
            row["call_ref"] = call_ref_uri(project_id, task.call.call_id)
            row["scorer_ref"] = object_ref_uri(project_id, task.scorer.object_id, task.scorer.digest)
            rows.append(row)
        next_after = tasks[-1].pk if len(tasks) == limit else None
        return Response({"tasks": rows, "next_after": next_after})


class JobCancelApi(APIView):
    def post(self, request, job_id):
        cancelled = job_cancel(user=request.user, job_id=job_id)
        job = job_for_user(user=request.user, job_id=job_id)
        return Response({"cancelled": cancelled, **job_representation(job)})


class JobRetryApi(APIView):
    def post(self, request, job_id):
        retried = job_retry_failed(user=request.user, job_id=job_id)
        job = job_for_user(user=request.user, job_id=job_id)
        return Response({"retried": retried, **job_representation(job)})
