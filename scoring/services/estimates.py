"""What a scoring request would cost, before anything is recorded: pairs per scorer, and for judges
the tokens and price of a sample of their prompts, extrapolated, and whether it fits the budget."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from scoring.engine.evaluate import scorer_load
from scoring.models import Call, Object, Project
from scoring.scorers.base import MissingArgument, ScorerConfigError, ScorerFailed
from scoring.selectors.costs import ZERO, BudgetState, budget_state, request_estimate, scorer_history
from scoring.weave.refs import object_ref_uri


@dataclass
class ScorerEstimate:
    scorer_ref: str
    class_name: str
    pairs: int
    metered: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: Decimal | None = ZERO
    method: str = "no model is asked: free"

    def as_dict(self) -> dict:
        return {
            "scorer_ref": self.scorer_ref,
            "class_name": self.class_name,
            "pairs": self.pairs,
            "estimated_prompt_tokens": self.prompt_tokens,
            "estimated_completion_tokens": self.completion_tokens,
            "estimated_usd": None if self.usd is None else float(self.usd),
            "method": self.method,
        }


@dataclass
class JobEstimate:
    pair_count: int
    scorers: list[ScorerEstimate]
    budget: BudgetState
    problems: list[str] = field(default_factory=list)  # why it does not fit, if it does not

    @property
    def usd(self) -> Decimal:
        return sum((s.usd for s in self.scorers if s.usd is not None), ZERO)

    @property
    def fits(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        remaining = self.budget.remaining
        return {
            "pair_count": self.pair_count,
            "pairs_per_scorer": {s.scorer_ref: s.pairs for s in self.scorers},
            "scorers": [s.as_dict() for s in self.scorers],
            "estimated_usd": float(self.usd),
            "estimated_tokens": sum(s.prompt_tokens + s.completion_tokens for s in self.scorers),
            "fits_budget": self.fits,
            "budget_problems": self.problems,
            "remaining_usd": None if remaining is None else float(remaining),
            "budget": self.budget.as_dict(),
        }


def _sample(call_pks: list[int]) -> list[int]:
    """Evenly spread call pks, at most SCORING_ESTIMATE_SAMPLE of them."""
    size = settings.SCORING_ESTIMATE_SAMPLE
    if len(call_pks) <= size:
        return call_pks
    step = len(call_pks) / size
    return [call_pks[int(i * step)] for i in range(size)]


def _judge_estimate(estimate: ScorerEstimate, scorer, project: Project, calls: list[tuple]) -> None:
    model_id = scorer.model.llm_model_id
    history = scorer_history(project_pk=project.pk, scorer_name=scorer.name, llm_model_id=model_id)
    prompt = completion = 0
    usd: Decimal | None = ZERO
    measured = 0
    method = None
    for output, inputs in calls:
        try:
            messages = scorer.messages(scorer.arguments(output, inputs or {}))
        except (MissingArgument, ScorerFailed):
            continue  # such a pair fails before any request: it costs nothing
        chars = sum(len(str(m.get("content") or "")) for m in messages)
        one = request_estimate(
            llm_model_id=model_id, prompt_chars=chars, max_tokens=scorer.model.params.get("max_tokens"), history=history
        )
        measured += 1
        prompt, completion, method = prompt + one.prompt_tokens, completion + one.completion_tokens, one.method
        usd = None if usd is None or one.usd is None else usd + one.usd
    if not measured:
        estimate.method = "none of the sampled calls has the scorer's arguments: no request is expected"
        return
    scale = estimate.pairs / len(calls)  # pairs that fail before asking are extrapolated too
    estimate.prompt_tokens = round(prompt * scale)
    estimate.completion_tokens = round(completion * scale)
    estimate.usd = None if usd is None else usd * Decimal(scale)
    estimate.method = f"{method}; prompts measured on {measured} of {estimate.pairs} call(s), extrapolated"


def pairs_estimate(
    *, project: Project | None, project_id: str, call_pks: list[int], scorers: list[Object]
) -> JobEstimate:
    """The estimate of scoring these (already resolved) calls with these scorers."""
    estimates = []
    calls = None
    for obj in scorers:
        ref = object_ref_uri(project_id, obj.object_id, obj.digest)
        try:
            scorer, _ = scorer_load(scorer_pk=obj.pk, project_id=project_id)
        except ScorerConfigError as exc:
            estimates.append(ScorerEstimate(ref, obj.leaf_object_class or "", len(call_pks), False, method=f"{exc}"))
            continue
        estimate = ScorerEstimate(ref, scorer.class_name, len(call_pks), scorer.metered)
        if scorer.metered and call_pks:
            if calls is None:
                calls = list(Call.objects.filter(pk__in=_sample(call_pks)).values_list("output", "inputs"))
            _judge_estimate(estimate, scorer, project, calls)
        estimates.append(estimate)
    budget = budget_state(project_pk=project.pk if project else None)
    result = JobEstimate(pair_count=len(call_pks) * len(scorers), scorers=estimates, budget=budget)
    if any(s.metered for s in estimates):
        usd = result.usd
        for name, left in (("daily", budget.remaining_today), ("monthly", budget.remaining_month)):
            if left is not None and usd > left:
                result.problems.append(
                    f"The estimate of {usd:.6f} USD does not fit the {name} budget: {left:.6f} USD remains"
                )
        if budget.job_cap_usd is not None and usd > budget.job_cap_usd:
            result.problems.append(
                f"The estimate of {usd:.6f} USD is over the per-job cap of {budget.job_cap_usd:.4f} USD"
            )
    return result
