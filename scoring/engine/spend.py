"""Judges' spend against budgets: reserved before each provider request and settled after it, under
the row locks of the project's day and of the job, which every worker process shares; a budget with
no room left cancels the remaining judge tasks of the jobs it covers, with reason budget_exhausted."""

import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from scoring.engine import states
from scoring.engine.jobs import job_finish_if_done
from scoring.models import ProjectBudget, ProjectSpend, ScorerUsage, ScoringJob, ScoringTask
from scoring.scorers import metered_classes
from scoring.scorers.base import BudgetExhausted, RetryableError, SpendMeter
from scoring.selectors.costs import ZERO, request_estimate, scorer_history, today

logger = logging.getLogger(__name__)

# A scorer's history is halved once it holds this many requests, so that recent ones weigh most.
HISTORY_HALF_LIFE = 2_000


@dataclass(frozen=True)
class Hold:
    """A reservation: how much, on which day's row, for which scorer and prompt."""

    day: date
    amount: Decimal
    scorer_name: str
    llm_model_id: str
    prompt_chars: int


class TaskMeter(SpendMeter):
    """The meter of one claimed task (scoring.engine.evaluate gives it to metered scorers)."""

    def __init__(self, task):
        self.task = task

    def reserve(self, *, scorer_name: str, llm_model_id: str, prompt_chars: int, max_tokens: int | None) -> Hold:
        history = scorer_history(project_pk=self.task.project_pk, scorer_name=scorer_name, llm_model_id=llm_model_id)
        estimate = request_estimate(
            llm_model_id=llm_model_id, prompt_chars=prompt_chars, max_tokens=max_tokens, history=history
        )
        hold = Hold(today(), estimate.usd or ZERO, scorer_name, llm_model_id, prompt_chars)
        refusal = spend_reserve(project_pk=self.task.project_pk, job_id=self.task.job_id, hold=hold)
        if refusal is None:
            return hold
        if not refusal.spent:
            raise RetryableError(refusal.message, error_type=states.BUDGET_IN_FLIGHT, retry_after=1.0, counts=False)
        cancelled = tasks_cancel_for_budget(
            project_pk=self.task.project_pk, job_id=self.task.job_id, scope=refusal.scope, message=refusal.message
        )
        logger.warning("%s; %d task(s) cancelled", refusal.message, cancelled)
        raise BudgetExhausted(refusal.message, scope=refusal.scope)

    def settle(self, hold: Hold | None, *, usage: dict | None = None, cost: dict | None = None) -> None:
        if hold is None:
            return
        spend_settle(
            project_pk=self.task.project_pk,
            job_id=self.task.job_id,
            task_id=self.task.id,
            hold=hold,
            actual=Decimal(str(cost["total_cost"])) if cost else ZERO,
            usage=usage,
        )


def _day_row_locked(project_pk: int, day: date) -> ProjectSpend:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ProjectSpend._meta.db_table} (project_id, day, spent_usd, reserved_usd) "
            "VALUES (%s, %s, 0, 0) ON CONFLICT (project_id, day) DO NOTHING",
            [project_pk, day],
        )
    return ProjectSpend.objects.select_for_update().get(project_id=project_pk, day=day)


@dataclass(frozen=True)
class Refusal:
    scope: str  # "project" or "job"
    message: str
    spent: bool  # False: only reservations fill the budget, which may settle for less


def spend_reserve(*, project_pk: int, job_id, hold: Hold) -> Refusal | None:
    """Reserve `hold.amount` on the project's day and on the job, unless what is settled and
    reserved reaches a budget; then the Refusal, and nothing is reserved. The day's row lock
    serialises the checks of all workers of the project, so their reservations add up: none can
    overspend with another."""
    with transaction.atomic():
        row = _day_row_locked(project_pk, hold.day)  # always first: one lock order, no deadlock
        job = ScoringJob.objects.select_for_update().only("cost_usd", "reserved_usd", "cost_cap_usd").get(pk=job_id)
        budget = ProjectBudget.objects.filter(project_id=project_pk).first()
        checks = []  # (scope, name, limit, settled, reserved)
        if budget is not None and budget.daily_usd is not None:
            checks.append(("project", "daily", budget.daily_usd, row.spent_usd, row.reserved_usd))
        if budget is not None and budget.monthly_usd is not None:
            earlier = ProjectSpend.objects.filter(
                project_id=project_pk, day__gte=hold.day.replace(day=1), day__lt=hold.day
            ).values_list("spent_usd", flat=True)
            month = sum(earlier, ZERO) + row.spent_usd
            checks.append(("project", "monthly", budget.monthly_usd, month, row.reserved_usd))
        if job.cost_cap_usd is not None:
            checks.append(("job", "job cap", job.cost_cap_usd, job.cost_usd, job.reserved_usd))
        # A request may start while any of the budget is left: the overshoot is then bounded by
        # the requests in flight. A budget taken only by reservations is not spent yet (they may
        # settle for less): the request waits for them instead.
        for scope, name, limit, settled, reserved in checks:
            if settled + reserved < limit:
                continue
            if settled >= limit:
                return Refusal(scope, f"The {name} budget of {limit:.4f} USD is spent ({settled:.6f} USD)", True)
            return Refusal(
                scope,
                f"The {name} budget of {limit:.4f} USD is taken by requests in flight ({settled:.6f} USD spent, "
                f"{reserved:.6f} USD reserved); waiting for them to settle",
                False,
            )
        ProjectSpend.objects.filter(pk=row.pk).update(reserved_usd=F("reserved_usd") + hold.amount)
        ScoringJob.objects.filter(pk=job_id).update(reserved_usd=F("reserved_usd") + hold.amount)
    return None


def spend_settle(*, project_pk: int, job_id, task_id: int, hold: Hold, actual: Decimal, usage: dict | None) -> None:
    """Replace a reservation by what the request cost (nothing if it was not answered), on the
    project's day, the job and the task, and add the request to its scorer's history."""
    with transaction.atomic():
        ProjectSpend.objects.filter(project_id=project_pk, day=hold.day).update(
            reserved_usd=F("reserved_usd") - hold.amount, spent_usd=F("spent_usd") + actual
        )
        ScoringJob.objects.filter(pk=job_id).update(
            reserved_usd=F("reserved_usd") - hold.amount, cost_usd=F("cost_usd") + actual
        )
        if actual:
            ScoringTask.objects.filter(pk=task_id).update(cost_usd=Coalesce(F("cost_usd"), Value(ZERO)) + actual)
        if usage and hold.prompt_chars:
            _history_add(project_pk, hold, usage)


def _history_add(project_pk: int, hold: Hold, usage: dict) -> None:
    table = ScorerUsage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} AS u (project_id, scorer_name, llm_model_id, requests, prompt_chars,
                    prompt_tokens, completion_tokens, updated_at)
                VALUES (%(project)s, %(scorer)s, %(model)s, 1, %(chars)s, %(prompt)s, %(completion)s, %(now)s)
                ON CONFLICT (project_id, scorer_name, llm_model_id) DO UPDATE SET
                    requests = (CASE WHEN u.requests >= %(half)s THEN u.requests / 2 ELSE u.requests END) + 1,
                    prompt_chars = (CASE WHEN u.requests >= %(half)s THEN u.prompt_chars / 2 ELSE u.prompt_chars END)
                        + %(chars)s,
                    prompt_tokens = (CASE WHEN u.requests >= %(half)s THEN u.prompt_tokens / 2 ELSE u.prompt_tokens END)
                        + %(prompt)s,
                    completion_tokens = (CASE WHEN u.requests >= %(half)s THEN u.completion_tokens / 2
                        ELSE u.completion_tokens END) + %(completion)s,
                    updated_at = %(now)s""",
            {
                "project": project_pk,
                "scorer": hold.scorer_name,
                "model": hold.llm_model_id,
                "chars": hold.prompt_chars,
                "prompt": int(usage.get("prompt_tokens") or 0),
                "completion": int(usage.get("completion_tokens") or 0),
                "now": timezone.now(),
                "half": HISTORY_HALF_LIFE,
            },
        )


def tasks_cancel_for_budget(*, project_pk: int, job_id, scope: str, message: str) -> int:
    """Cancel the judge tasks not yet running of the jobs a spent budget covers: the job for its
    cap, every unfinished job of the project for its day or month. Running ones end as they try to
    reserve. Returns how many were cancelled."""
    jobs = (
        [job_id]
        if scope == "job"
        else list(
            ScoringJob.objects.filter(project_id=project_pk, finished_at__isnull=True).values_list("pk", flat=True)
        )
    )
    cancelled = ScoringTask.objects.filter(
        job_id__in=jobs, status__in=states.CANCELLABLE, scorer__leaf_object_class__in=metered_classes()
    ).update(**states.cancel_fields(timezone.now(), error_type=states.BUDGET_EXHAUSTED, message=message))
    for job in jobs:
        job_finish_if_done(job_id=job)
    return cancelled
