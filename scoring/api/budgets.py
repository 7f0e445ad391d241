"""A project's budgets and spend (`/calls/score/budgets/<entity>/<project>`): read by its members,
set by its admins."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import StrictObjectSerializer
from scoring.selectors.costs import budget_state
from scoring.selectors.projects import project_for_read
from scoring.services.budgets import budget_set


def _money():
    return serializers.DecimalField(max_digits=16, decimal_places=4, min_value=0, allow_null=True, required=False)


class ProjectBudgetApi(APIView):
    class InputSerializer(StrictObjectSerializer):
        daily_usd = _money()
        monthly_usd = _money()
        job_cap_usd = _money()

    def get(self, request, entity, project):
        found = project_for_read(user=request.user, project_id=f"{entity}/{project}", loc=("path", "project"))
        return Response(budget_state(project_pk=found.pk if found else None).as_dict())

    def put(self, request, entity, project):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        budget = budget_set(user=request.user, project_id=f"{entity}/{project}", **serializer.validated_data)
        return Response(budget_state(project_pk=budget.project_id).as_dict())
