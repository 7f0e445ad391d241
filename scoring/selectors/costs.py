"""Reads of what scoring costs: a judge request's estimate (its scorer's history of tokens per
character, else a rule of thumb), the spend and remaining budget of a project, a job's cost by scorer."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Max, Sum
from django.utils import timezone

from scoring.models import ProjectBudget, ProjectSpend, ScorerUsage, ScoringJob, ScoringTask
from scoring.scorers import prices
from scoring.scorers.providers import split_model_id

ZERO = Decimal(0)
# Fewer requests than this in a scorer's history and the rule of thumb is used instead.
HISTORY_MIN_REQUESTS = 3


@dataclass(frozen=True)
class RequestEstimate:
    """The tokens and price one judge request is expected to take, and how that was worked out."""

    prompt_tokens: int
    completion_tokens: int
    usd: Decimal | None  # None: no price is known for the model
    method: str


def scorer_history(*, project_pk: int, scorer_name: str, llm_model_id: str) -> ScorerUsage | None:
    usage = ScorerUsage.objects.filter(
        project_id=project_pk, scorer_name=scorer_name, llm_model_id=llm_model_id
    ).first()
    return usage if usage is not None and usage.requests >= HISTORY_MIN_REQUESTS and usage.prompt_chars else None


def request_estimate(
    *, llm_model_id: str, prompt_chars: int, max_tokens: int | None, history: ScorerUsage | None
) -> RequestEstimate:
    """One request of `prompt_chars` characters of prompt, from the scorer's history when it has
    one, else the rule of thumb (prices.CHARS_PER_TOKEN; the answer at its max_tokens)."""
    if history is not None:
        per_char = history.prompt_tokens / history.prompt_chars
        prompt_tokens = round(prompt_chars * per_char)
        completion_tokens = round(history.completion_tokens / history.requests)
        method = (
            f"history: {per_char:.3f} prompt tokens per character and {completion_tokens} completion tokens "
            f"per request, over the scorer's last {history.requests} request(s)"
        )
    else:
        prompt_tokens = -(-prompt_chars // prices.CHARS_PER_TOKEN)
        completion_tokens = int(max_tokens or prices.COMPLETION_TOKENS_DEFAULT)
        method = f"rule of thumb: {prices.CHARS_PER_TOKEN} characters per prompt token, and the answer at " + (
            f"its max_tokens ({completion_tokens})" if max_tokens else f"{completion_tokens} tokens (no max_tokens)"
        )
    provider, model = split_model_id(llm_model_id)
    try:
        per_input, per_output = prices.unit_prices(provider, model)
    except prices.UnknownPrice:
        return RequestEstimate(prompt_tokens, completion_tokens, None, method + "; no price known for the model")
    usd = (per_input * prompt_tokens + per_output * completion_tokens) / prices.MILLION
    return RequestEstimate(prompt_tokens, completion_tokens, usd, method)


@dataclass(frozen=True)
class BudgetState:
    """A project's budgets and what is left of each (None: no such budget)."""

    daily_usd: Decimal | None
    monthly_usd: Decimal | None
    job_cap_usd: Decimal | None
    spent_today: Decimal
    spent_month: Decimal
    reserved: Decimal

    @property
    def remaining_today(self) -> Decimal | None:
        return None if self.daily_usd is None else max(ZERO, self.daily_usd - self.spent_today - self.reserved)

    @property
    def remaining_month(self) -> Decimal | None:
        return None if self.monthly_usd is None else max(ZERO, self.monthly_usd - self.spent_month - self.reserved)

    @property
    def remaining(self) -> Decimal | None:
        """What a new job may spend: the least of what is left today and this month."""
        left = [r for r in (self.remaining_today, self.remaining_month) if r is not None]
        return min(left) if left else None

    def as_dict(self) -> dict:
        money = lambda value: None if value is None else float(value)  # noqa: E731
        return {
            "daily_usd": money(self.daily_usd),
            "monthly_usd": money(self.monthly_usd),
            "job_cap_usd": money(self.job_cap_usd),
            "spent_today_usd": money(self.spent_today),
            "spent_month_usd": money(self.spent_month),
            "reserved_usd": money(self.reserved),
            "remaining_today_usd": money(self.remaining_today),
            "remaining_month_usd": money(self.remaining_month),
        }


def today() -> date:
    return timezone.now().date()  # USE_TZ: UTC


def default_job_cap(budget: ProjectBudget | None) -> Decimal | None:
    if budget is not None and budget.job_cap_usd is not None:
        return budget.job_cap_usd
    cap = settings.SCORING_JOB_COST_CAP_USD
    return Decimal(str(cap)) if cap not in (None, "") else None


def budget_state(*, project_pk: int | None) -> BudgetState:
    budget = ProjectBudget.objects.filter(project_id=project_pk).first() if project_pk else None
    day = today()
    spend = {row.day: row for row in ProjectSpend.objects.filter(project_id=project_pk, day__gte=day.replace(day=1))}
    current = spend.get(day)
    return BudgetState(
        daily_usd=budget.daily_usd if budget else None,
        monthly_usd=budget.monthly_usd if budget else None,
        job_cap_usd=default_job_cap(budget),
        spent_today=current.spent_usd if current else ZERO,
        spent_month=sum((row.spent_usd for row in spend.values()), ZERO),
        reserved=current.reserved_usd if current else ZERO,
    )


def job_costs(*, job: ScoringJob) -> dict:
    """The job's cost so far, in all and per scorer ref (settled spend; reserved in flight)."""
    rows = (
        ScoringTask.objects.filter(job_id=job.pk, cost_usd__isnull=False)
        .values_list("scorer__object_id", "scorer__digest")
        .annotate(total=Sum("cost_usd"), n=Count("id"))
        .order_by()
    )
    entity, name = job.project.entity, job.project.name
    return {
        "total_usd": float(job.cost_usd),
        "reserved_usd": float(job.reserved_usd),
        "cap_usd": None if job.cost_cap_usd is None else float(job.cost_cap_usd),
        "by_scorer": {
            f"weave:///{entity}/{name}/object/{object_id}:{digest}": {"total_usd": float(total), "tasks": n}
            for object_id, digest, total, n in rows
        },
    }


def job_waiting_reasons(*, job_id) -> list[dict]:
    """Why the job's waiting tasks wait, most common first: error type, a message, how many."""
    rows = (
        ScoringTask.objects.filter(job_id=job_id, status=ScoringTask.Status.WAITING)
        .values_list("error_type")
        .annotate(n=Count("id"), message=Max("error_message"))
        .order_by("-n")
    )
    return [{"error_type": kind, "message": message, "tasks": n} for kind, n, message in rows]


def budget_spent_reason(*, project_pk: int) -> str | None:
    """Why the project's judges may not spend now: its daily or monthly budget is spent (settled
    spend, not reservations, which settle soon); None while there is budget left."""
    state = budget_state(project_pk=project_pk)
    if state.daily_usd is not None and state.spent_today >= state.daily_usd:
        return f"budget_exhausted: the daily budget of ${state.daily_usd} is spent (${state.spent_today} today)"
    if state.monthly_usd is not None and state.spent_month >= state.monthly_usd:
        return (
            f"budget_exhausted: the monthly budget of ${state.monthly_usd} is spent (${state.spent_month} this month)"
        )
    return None
