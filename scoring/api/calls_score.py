"""`POST /calls/score`: enqueue scoring jobs for a list of calls (the contract's CallsScoreReq)."""

from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import StrictListField, StrictObjectSerializer, StrictStringField, WeaveStringField
from scoring.models import ScoringJob
from scoring.services.jobs import job_estimate, job_submit

MAX_SCORE_CALL_IDS = 100_000
MAX_SCORE_REFS = 1_000


class CallsScoreApi(APIView):
    class InputSerializer(StrictObjectSerializer):
        project_id = StrictStringField()
        # The pairs a job makes are capped by SCORING_MAX_PAIRS_PER_JOB; these bound the lists themselves.
        call_ids = StrictListField(child=StrictStringField(), max_items=MAX_SCORE_CALL_IDS)
        scorer_refs = StrictListField(child=StrictStringField(), max_items=MAX_SCORE_REFS)
        wb_user_id = WeaveStringField(
            max_length=ScoringJob._meta.get_field("client_wb_user_id").max_length, required=False, allow_null=True
        )

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        submitted = job_submit(
            user=request.user,
            project_id=data["project_id"],
            call_ids=data["call_ids"],
            scorer_refs=data["scorer_refs"],
            request=dict(request.data),
        )
        return Response({"job_id": str(submitted.job.pk), "task_count": submitted.task_count})


class CallsScoreEstimateApi(APIView):
    """`POST /calls/score/estimate`: the /calls/score body; what it would cost; creates nothing."""

    InputSerializer = CallsScoreApi.InputSerializer

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        estimate = job_estimate(
            user=request.user,
            project_id=data["project_id"],
            call_ids=data["call_ids"],
            scorer_refs=data["scorer_refs"],
        )
        return Response(estimate.as_dict())
