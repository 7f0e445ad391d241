"""The task state machine, defined once for the portable (ORM) path and the set-based (SQL) path:
which tasks may be claimed, the fences that keep a result to the worker that holds its task, and
the columns each transition sets."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q

from scoring.models import TASK_FINISHED, TASK_UNFINISHED, TaskStatus

Status = TaskStatus
FINISHED = TASK_FINISHED
UNFINISHED = TASK_UNFINISHED
RESULTS = (Status.SUCCEEDED, Status.FAILED)  # the verdicts that end a task; a wait is not one
ERROR_TYPE_LIMIT = 128  # ScoringTask.error_type's length
ERROR_MESSAGE_LIMIT = 4_000
# Error reasons the engine itself gives: a task cancelled because its project's or job's budget is
# spent, one waiting while requests in flight hold the rest of a budget, and one waiting because
# its provider is blocked (scoring.scorers.blocks).
BUDGET_EXHAUSTED = "budget_exhausted"
BUDGET_IN_FLIGHT = "BudgetInFlight"
PROVIDER_BLOCKED = "ProviderBlocked"


def _sql_list(states) -> str:
    return ", ".join(f"'{state}'" for state in states)


# Claimable: not finished, and not held by a live lease (a running task whose lease expired was
# abandoned by a dead worker and may be taken over).
def claimable(now: datetime) -> Q:
    return ~Q(status__in=FINISHED) & (~Q(status=Status.RUNNING) | Q(lease_expires_at__lt=now))


# Abandoned: the claimable tasks that are running, so claiming one is a takeover.
def abandoned(now: datetime) -> Q:
    return Q(status=Status.RUNNING, lease_expires_at__lt=now)


# The same rule in SQL (`now` is a named parameter). Spelled with the final states on purpose: so
# the planner cannot use the partial index of unfinished tasks (its statistics are stale right
# after a large submit, and it would then scan every unfinished task of the job for each batch)
# and looks the tasks up by primary key.
def claimable_sql(alias: str = "t", now: str = "now") -> str:
    return (
        f"({alias}.status NOT IN ({_sql_list(FINISHED)}) "
        f"AND ({alias}.status <> '{Status.RUNNING}' OR {alias}.lease_expires_at < %({now})s))"
    )


# Held: the task is still running with the attempt this worker claimed. Every write of a claimed
# task's result is fenced on it, so a worker whose lease was taken over writes nothing.
def held(task_id: int, attempts: int) -> Q:
    return Q(pk=task_id, status=Status.RUNNING, attempts=attempts)


def held_sql(alias: str = "t", attempts: str = "v.attempts") -> str:
    return f"{alias}.status = '{Status.RUNNING}' AND {alias}.attempts = {attempts}"


# Unclaimed: nobody touched the task since it was read as the attempt it would be (the set-based
# path writes fast scorers' results without claiming them first; a concurrent writer of the same
# task waits on the row lock, then finds it changed).
def unclaimed_sql(alias: str = "t", attempts: str = "v.attempts") -> str:
    return f"{alias}.attempts = {attempts} - 1 AND {claimable_sql(alias)}"


def lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.SCORING_TASK_LEASE_SECONDS)


def claim_fields(now: datetime) -> dict:
    """What claiming a task sets: running, one more attempt, a fresh lease."""
    return {
        "status": Status.RUNNING,
        "attempts": F("attempts") + 1,
        "started_at": now,
        "retry_at": None,
        "lease_expires_at": lease_until(now),
    }


def finish_fields(now: datetime, *, status: str, error_type: str = "", message: str = "", scoring_call_id=None) -> dict:
    """What ending a held task with a result (succeeded or failed) sets."""
    return {
        "status": status,
        "finished_at": now,
        "lease_expires_at": None,
        "retry_at": None,
        "error_type": error_type[:ERROR_TYPE_LIMIT],
        "error_message": message[:ERROR_MESSAGE_LIMIT],
        "scoring_call_id": scoring_call_id,
    }


def wait_fields(retry_at: datetime, *, error_type: str, message: str, counts: bool = True) -> dict:
    """What putting a held task back to wait for its next attempt sets; with counts=False the claim
    is given back as if it had not been an attempt."""
    return {
        "status": Status.WAITING,
        "lease_expires_at": None,
        "retry_at": retry_at,
        "error_type": error_type[:ERROR_TYPE_LIMIT],
        "error_message": message[:ERROR_MESSAGE_LIMIT],
        **({} if counts else {"attempts": F("attempts") - 1}),
    }


# Operators' transitions: cancel what has not started (or waits to retry); run failed tasks again
# with a fresh attempt budget, keeping their attempt count and earlier scoring calls.
CANCELLABLE = (Status.PENDING, Status.QUEUED, Status.WAITING)
# Given a message by the dispatch window (scoring.engine.window): in the broker, or being run.
IN_WINDOW = (Status.QUEUED, Status.RUNNING, Status.WAITING)


def cancel_fields(now: datetime, *, error_type: str = "", message: str = "") -> dict:
    fields = {"status": Status.CANCELLED, "finished_at": now, "retry_at": None}
    if error_type:
        fields |= {"error_type": error_type, "error_message": message[:ERROR_MESSAGE_LIMIT]}
    return fields


def retry_fields() -> dict:
    """Back behind the dispatch window (the job's cursor is rewound to let it through again)."""
    return {"status": Status.PENDING, "retried_at_attempt": F("attempts"), "finished_at": None, "retry_at": None}
