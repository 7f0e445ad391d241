"""The outbox of ended calls: every route that ends a call writes one row in a project with an
active monitor, and none elsewhere; the matcher consumes it into tasks of the monitor's job."""

from django.utils import timezone

from scoring.engine.broker import wait_for_monitors_wake
from scoring.engine.monitors import outbox_consume
from scoring.models import MonitorOutbox, MonitorVersion, ScoringTask
from scoring.selectors.monitors import projects_monitored_forget
from scoring.services.calls import call_end, call_start, calls_complete, calls_upsert_batch
from scoring.services.objects import object_store
from scoring.weave.ids import wb_user_id_for
from tests import factories

OP = "weave:///alice/demo/op/answer:abc"


def monitor(user, *, active=True, **fields):
    val = {
        "_type": "Monitor",
        "_class_name": "Monitor",
        "_bases": ["Object", "BaseModel"],
        "active": active,
        "scorers": [factories.scorer()],
        "op_names": ["weave:///alice/demo/op/answer:*"],
        "sampling_rate": 1.0,
        **fields,
    }
    obj = object_store(project=factories.project(), object_id="m", val=val, wb_user_id=wb_user_id_for(user))
    projects_monitored_forget(obj.project_id)
    return obj


def start(call_id: str) -> dict:
    return {
        "project_id": "alice/demo",
        "id": call_id,
        "op_name": OP,
        "started_at": timezone.now(),
        "attributes": {},
        "inputs": {},
    }


def end(call_id: str) -> dict:
    return {"project_id": "alice/demo", "id": call_id, "ended_at": timezone.now(), "summary": {}, "output": "{}"}


def test_every_route_that_ends_a_call_writes_one_outbox_row(user):
    """/call/end, upsert_batch, calls/complete and a start arriving after its end each leave one
    outbox row per ended call; a start alone leaves none."""
    monitor(user)
    call_start(user=user, start=start("a"))
    assert MonitorOutbox.objects.count() == 0
    call_end(user=user, end=end("a"))
    calls_upsert_batch(user=user, batch=[("start", start("b")), ("end", end("b"))])
    calls_complete(user=user, batch=[{**start("c"), **end("c"), "trace_id": "t"}])
    call_end(user=user, end=end("d"))  # the end first: not yet a call with an op
    call_start(user=user, start=start("d"))
    rows = MonitorOutbox.objects.order_by("pk").values_list("call__call_id", flat=True)
    assert list(rows) == ["a", "b", "c", "d"]


def test_no_outbox_without_an_active_monitor(user):
    """A project whose only monitor is inactive writes no outbox row for its calls."""
    monitor(user, active=False)
    calls_upsert_batch(user=user, batch=[("start", start("a")), ("end", end("a"))])
    assert not MonitorOutbox.objects.exists()


def test_consumed_twice_a_call_is_one_task(user):
    """A call whose end is recorded twice, and consumed in two batches, is matched twice but
    queued once: the job's (call, scorer) constraint absorbs the duplicate."""
    monitor(user)
    for _ in range(2):
        calls_complete(user=user, batch=[{**start("a"), **end("a"), "trace_id": "t"}])
        assert outbox_consume() == 1
    assert ScoringTask.objects.filter(job__source="monitor").count() == 1
    assert MonitorVersion.objects.get().matched == 2
    assert not MonitorOutbox.objects.exists()


def test_other_ops_and_queries_do_not_match(user):
    """Only calls of the named op that satisfy the query become tasks."""
    query = {
        "_type": "Query",
        "expr_": {"_type": "EqOperation", "eq_": [{"get_field_": "inputs.lang"}, {"literal_": "en"}]},
    }
    monitor(user, query=query)
    calls_complete(
        user=user,
        batch=[
            {**start("en"), **end("en"), "trace_id": "t", "inputs": {"lang": "en"}},
            {**start("fr"), **end("fr"), "trace_id": "t", "inputs": {"lang": "fr"}},
            {**start("other"), **end("other"), "trace_id": "t", "inputs": {"lang": "en"}, "op_name": "x"},
        ],
    )
    outbox_consume()
    tasks = ScoringTask.objects.filter(job__source="monitor").values_list("call__call_id", flat=True)
    assert list(tasks) == ["en"]


def test_an_ingest_that_writes_outbox_rows_wakes_a_matcher(user, broker, django_capture_on_commit_callbacks):
    """After the commit of an ingest that ended a call in a monitored project, one waiting matcher
    is woken (Redis), rather than finding the call at its next poll; in a project with no monitor
    nothing is said."""
    with django_capture_on_commit_callbacks(execute=True):
        call_start(user=user, start=start("quiet"))
        call_end(user=user, end=end("quiet"))
    assert wait_for_monitors_wake(broker, 0.01) is False

    monitor(user)
    with django_capture_on_commit_callbacks(execute=True):
        calls_complete(user=user, batch=[{**start("loud"), **end("loud"), "trace_id": "t"}])
    assert MonitorOutbox.objects.count() == 1
    assert wait_for_monitors_wake(broker, 5) is True
    assert wait_for_monitors_wake(broker, 0.01) is False


def test_a_judge_monitor_pauses_while_its_projects_budget_is_spent(user):
    """With the project's daily budget spent, a monitor whose scorer is a judge turns no ended call
    into a task and its stats say it is paused and why; with budget left again it scores again."""
    from decimal import Decimal

    from scoring.models import ProjectBudget, ProjectSpend
    from scoring.selectors.monitors import monitor_stats

    monitor(user, scorers=[factories.scorer(class_name="LLMAsAJudgeScorer", object_id="judge")])
    project = factories.project()
    ProjectBudget.objects.create(project=project, daily_usd=Decimal("1"))
    ProjectSpend.objects.create(project=project, day=timezone.now().date(), spent_usd=Decimal("1"))

    calls_complete(user=user, batch=[{**start("a"), **end("a"), "trace_id": "t"}])
    outbox_consume()
    assert ScoringTask.objects.count() == 0
    [paused] = monitor_stats(user=user, project_id="alice/demo", name="m")
    assert paused.paused.startswith("budget_exhausted: the daily budget of $1")
    assert paused.cost_usd == 0

    ProjectSpend.objects.update(spent_usd=Decimal("0.5"))
    calls_complete(user=user, batch=[{**start("b"), **end("b"), "trace_id": "t2"}])
    outbox_consume()
    assert list(ScoringTask.objects.values_list("call__call_id", flat=True)) == ["b"]
    assert monitor_stats(user=user, project_id="alice/demo", name="m")[0].paused is None
