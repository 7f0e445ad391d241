"""`POST /calls/score/estimate` and a project's budgets (`/calls/score/budgets/<e>/<p>`)."""

from decimal import Decimal

import pytest

from scoring.models import ProjectBudget, ScoringJob
from tests import factories
from tests.e2e.test_scorers_e2e import publish_judge


@pytest.fixture
def setup(db):
    ids = [factories.call(call_id=f"c{i}", output="4", inputs={"question": "What is 2 + 2?"}).call_id for i in range(4)]
    return ids, publish_judge(), factories.scorer()


def estimate(api, **body):
    return api.post("/calls/score/estimate", {"project_id": "alice/demo", **body}, format="json")


def test_estimate_counts_pairs_and_prices_judges_by_rule_of_thumb(api, setup):
    """The estimate answers the pair count, pairs per scorer, and for the judge tokens and price
    from the stated rule of thumb (no history yet); free scorers cost nothing; nothing is created."""
    ids, judge, free = setup
    response = estimate(api, call_ids=ids + ids[:1], scorer_refs=[judge, free])
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["pair_count"] == 8
    assert data["pairs_per_scorer"] == {judge: 4, free: 4}
    by_class = {s["class_name"]: s for s in data["scorers"]}
    judged = by_class["LLMAsAJudgeScorer"]
    assert judged["method"].startswith("rule of thumb: 4 characters per prompt token")
    assert judged["estimated_completion_tokens"] == 4 * 100  # max_tokens of the judge's model
    assert judged["estimated_prompt_tokens"] > 0
    assert judged["estimated_usd"] > 0
    assert by_class["ValidJSONScorer"]["estimated_usd"] == 0
    assert data["fits_budget"] is True and data["remaining_usd"] is None
    assert ScoringJob.objects.count() == 0


def test_estimate_says_when_it_does_not_fit_the_budget(api, setup):
    """With a daily budget smaller than the estimate, the estimate says it does not fit and why."""
    ids, judge, _ = setup
    ProjectBudget.objects.create(project=factories.project(), daily_usd=Decimal("0.0001"))
    data = estimate(api, call_ids=ids, scorer_refs=[judge]).json()
    assert data["fits_budget"] is False
    assert data["remaining_usd"] == 0.0001
    assert "daily budget" in data["budget_problems"][0]


def test_estimate_refuses_bad_input_in_the_contract_shape(api, setup):
    """The estimate validates the /calls/score body the same way: a 422 per problem."""
    response = estimate(api, call_ids="c0", scorer_refs=["not a ref"])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "call_ids"]


def test_per_job_cap_refuses_at_submit_and_is_kept_on_the_job(api, setup):
    """A job over the project's per-job cap is refused at submit; one under it records the cap."""
    ids, judge, _ = setup
    ProjectBudget.objects.create(project=factories.project(), job_cap_usd=Decimal("0.0001"))
    body = {"project_id": "alice/demo", "call_ids": ids, "scorer_refs": [judge]}
    refused = api.post("/calls/score", body, format="json")
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["ctx"]["job_cap_usd"] == 0.0001
    ProjectBudget.objects.update(job_cap_usd=Decimal("1"))
    accepted = api.post("/calls/score", body, format="json")
    assert accepted.status_code == 200
    assert ScoringJob.objects.get().cost_cap_usd == Decimal("1")


def test_project_admin_sets_budgets_and_others_cannot(api, client_for, make_user, db):
    """The project's own user sets its budgets through the API and reads what remains; a user of
    another entity gets 403, a member of the project's group without the permission too, and a
    negative amount is a 422."""
    from django.contrib.auth.models import Group

    response = api.put("/calls/score/budgets/alice/demo", {"daily_usd": "5", "monthly_usd": "100"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["remaining_today_usd"] == 5.0
    assert api.get("/calls/score/budgets/alice/demo").json()["monthly_usd"] == 100.0
    bob = make_user("bob")
    assert client_for(bob).put("/calls/score/budgets/alice/demo", {"daily_usd": "1"}, format="json").status_code == 403
    carol = make_user("carol")
    Group.objects.create(name="team").user_set.add(carol)
    carols = client_for(carol)
    assert carols.get("/calls/score/budgets/team/demo").status_code == 200
    assert carols.put("/calls/score/budgets/team/demo", {"daily_usd": "1"}, format="json").status_code == 403
    negative = api.put("/calls/score/budgets/alice/demo", {"daily_usd": "-1"}, format="json")
    assert negative.status_code == 422
    assert negative.json()["detail"][0]["loc"] == ["body", "daily_usd"]
