"""Cost, budgets, blocked providers and fair share end to end: real worker processes, the real
test database and Redis, the real local OpenAI-compatible server (which reports token usage), and
the API over real HTTP (live_server)."""

import json
import time
from decimal import Decimal

import httpx
import pytest
from django.db.models import Max, Sum

from scoring.engine.reconcile import broker_view
from scoring.models import Call, Feedback, ProjectBudget, ProjectSpend, ScorerUsage, ScoringJob, ScoringTask
from scoring.scorers import blocks
from scoring.services.api_keys import api_key_create
from tests import factories
from tests.conftest import basic, manage, start_worker, stop_worker, wait_for
from tests.e2e.test_scorers_e2e import finished, publish_judge, submit
from tests.fakes import FAKE_OPENAI_KEY, FAST_HTTP_ENV
from tests.fakes.openai_server import FakeOpenAI, answer

pytestmark = pytest.mark.slow

Status = ScoringTask.Status
MODEL = "openai/gpt-4o-mini"
# One token for a tenth of a cent: request prices become round numbers.
PRICES = {MODEL: {"input_per_mtok": 1000, "output_per_mtok": 1000}}


@pytest.fixture
def provider():
    with FakeOpenAI(api_key=FAKE_OPENAI_KEY) as server:
        yield server
    blocks.provider_unblock("openai")


@pytest.fixture
def run_worker(transactional_db, broker):
    started = []

    def start(processes=1, threads=4, **env):
        started.append(start_worker(processes=processes, threads=threads, extra_env={**FAST_HTTP_ENV, **env}))

    yield start
    for process in started:
        stop_worker(process)


@pytest.fixture
def http(live_server, user):
    _, key = api_key_create(user=user, name="e2e")
    with httpx.Client(base_url=live_server.url, headers={"Authorization": basic(key)}, timeout=30) as client:
        yield client


def calls(n, prefix="c", question="What is the sum of two and two, in a few words?"):
    return [
        factories.call(call_id=f"{prefix}{i}", output="4", inputs={"question": f"{question} #{i}"}).call_id
        for i in range(n)
    ]


def test_judge_scoring_records_its_price_on_the_scoring_call_task_job_and_project(user, provider, run_worker, http):
    """The price of a judge's tokens (genai-prices' bundled gpt-4o-mini price) is stored in the
    scoring call's summary.weave.costs, on the task, summed on the job and the project's day, and
    shown by the job API per scorer."""
    calls(1)
    provider.script(answer('{"correct": true}', usage={"prompt_tokens": 1000, "completion_tokens": 100}))
    ref = publish_judge()
    job = submit(user, ["c0"], [ref])
    run_worker(**provider.provider_env("openai"))
    wait_for(finished(job), timeout=60, message="the judge task")

    expected = Decimal("0.00015") + Decimal("0.00006")  # 1000 x $0.15/M + 100 x $0.60/M
    task = ScoringTask.objects.get(job=job)
    assert task.status == Status.SUCCEEDED
    assert task.cost_usd == expected
    costs = Call.objects.get(call_id=task.scoring_call_id).summary["weave"]["costs"][MODEL]
    assert (costs["prompt_tokens"], costs["completion_tokens"]) == (1000, 100)
    assert Decimal(str(costs["total_cost"])) == expected
    assert costs["cost_source"] == "genai-prices"
    job.refresh_from_db()
    assert (job.cost_usd, job.reserved_usd) == (expected, 0)
    assert ProjectSpend.objects.get().spent_usd == expected
    shown = http.get(f"/calls/score/jobs/{job.pk}").json()["cost"]
    assert shown["total_usd"] == float(expected)
    assert shown["by_scorer"][ref] == {"total_usd": float(expected), "tasks": 1}


def test_estimate_of_a_second_run_is_close_to_its_actual_tokens(user, provider, run_worker, http):
    """After a first run, the estimate of the same scorer on similar calls uses its history of
    tokens per character, and comes within 10 % of the tokens the second run actually used."""
    ref = publish_judge()
    first, second = calls(8, "first"), calls(8, "second")
    run_worker(**provider.provider_env("openai"))
    wait_for(finished(submit(user, first, [ref])), timeout=90, message="the first run")

    body = {"project_id": "alice/demo", "call_ids": second, "scorer_refs": [ref]}
    estimate = http.post("/calls/score/estimate", json=body).json()
    [scorer] = estimate["scorers"]
    assert scorer["method"].startswith("history:")
    assert ScoringJob.objects.count() == 1  # the estimate created nothing

    job = submit(user, second, [ref])
    wait_for(finished(job), timeout=90, message="the second run")
    actual = [
        Call.objects.get(call_id=task.scoring_call_id).summary["usage"][MODEL]
        for task in ScoringTask.objects.filter(job=job)
    ]
    for kind in ("prompt_tokens", "completion_tokens"):
        used = sum(usage[kind] for usage in actual)
        assert abs(scorer[f"estimated_{kind}"] - used) <= 0.1 * used, (kind, scorer, used)


def test_budget_exhausted_mid_job_by_two_worker_processes(user, provider, run_worker):
    """Two worker processes spend one daily budget together: once it is spent the job's remaining
    judge tasks end cancelled with budget_exhausted (no feedback, no failure), every answered
    request became a score, and the spend exceeds the budget by at most the requests that were
    in flight (2 processes x 4 threads), with nothing left reserved."""
    project = factories.project()
    budget = Decimal("0.2")
    ProjectBudget.objects.create(project=project, daily_usd=budget)
    ids = calls(120)
    job = submit(user, ids, [publish_judge()])
    provider.latency = 0.05
    run_worker(processes=2, threads=4, SCORING_PRICES=json.dumps(PRICES), **provider.provider_env("openai"))
    wait_for(finished(job), timeout=120, message="the job to end")

    tasks = ScoringTask.objects.filter(job=job)
    succeeded = tasks.filter(status=Status.SUCCEEDED).count()
    cancelled = tasks.filter(status=Status.CANCELLED)
    assert tasks.filter(status=Status.FAILED).count() == 0
    assert cancelled.count() > 0
    assert succeeded + cancelled.count() == len(ids)
    assert set(cancelled.values_list("error_type", flat=True)) == {"budget_exhausted"}
    assert Feedback.objects.count() == succeeded == len(provider.completions)
    spend = ProjectSpend.objects.get(project=project)
    most_expensive = tasks.aggregate(total=Sum("cost_usd"))["total"] / succeeded * 2  # a generous request price
    assert budget <= spend.spent_usd <= budget + 8 * most_expensive
    assert spend.reserved_usd == 0
    # The job is stamped just after its last result commits.
    wait_for(lambda: ScoringJob.objects.filter(pk=job.pk, final_status="cancelled").exists(), message="the stamp")
    job.refresh_from_db()
    assert job.cost_usd == spend.spent_usd


def test_budget_refused_at_submit_over_http(user, provider, http):
    """A request whose estimate does not fit what remains of the daily budget is a 422 in the
    contract's shape stating the estimate and what remains; no job is recorded."""
    project = factories.project()
    ProjectBudget.objects.create(project=project, daily_usd=Decimal("0.001"))
    ref = publish_judge()
    body = {"project_id": "alice/demo", "call_ids": calls(50), "scorer_refs": [ref]}
    response = http.post("/calls/score", json=body)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["type"] == "budget_exceeded"
    assert problem["loc"] == ["body"]
    assert problem["ctx"]["remaining_usd"] == 0.001
    assert problem["ctx"]["estimated_usd"] > 0.001
    assert "0.001000 USD remains" in problem["msg"]
    assert ScoringJob.objects.count() == 0


def test_provider_answering_401_is_blocked_and_its_tasks_resume(user, provider, run_worker, http):
    """A provider answering 401 is blocked: its tasks wait (no attempt spent) with the first
    failure's message shown in the job API, no more requests are sent while it is blocked, and
    once the key is fixed and an operator clears the block every task succeeds."""
    provider.api_key = "sk-the-key-nobody-configured"
    job = submit(user, calls(6), [publish_judge()])
    run_worker(
        SCORING_PROVIDER_BLOCK_SECONDS="600",
        **{"SCORING_PROVIDERS": json.dumps({"openai": {"base_url": provider.base_url, "api_key": FAKE_OPENAI_KEY}})},
    )
    wait_for(
        lambda: ScoringTask.objects.filter(job=job, status=Status.WAITING, error_type="ProviderBlocked").count() == 6,
        timeout=60,
        message="every task to wait for the blocked provider",
    )
    refused = len(provider.completions)
    assert 1 <= refused <= 4  # at most the requests already in flight when the first 401 came
    [reason] = http.get(f"/calls/score/jobs/{job.pk}").json()["waiting_reasons"]
    assert (reason["error_type"], reason["tasks"]) == ("ProviderBlocked", 6)
    assert "Incorrect API key provided" in reason["message"]
    assert FAKE_OPENAI_KEY not in reason["message"]
    assert set(ScoringTask.objects.filter(job=job).values_list("attempts", flat=True)) == {0}
    assert len(provider.completions) == refused

    provider.api_key = FAKE_OPENAI_KEY
    result = manage("scoring_providers", "--unblock", "openai")
    assert "6 waiting task(s) sent again" in result.stdout, result.stderr
    wait_for(finished(job), timeout=60, message="the resumed tasks")
    assert set(ScoringTask.objects.filter(job=job).values_list("status", flat=True)) == {Status.SUCCEEDED}


def test_a_small_job_of_another_project_is_not_held_behind_a_huge_one(user, run_worker, settings):
    """With dispatch windows, a 10-pair job of project B submitted while a large job of project A
    runs finishes before A's job does, and A never has more than its window (plus what workers
    have fetched) in the broker."""
    window = 30
    a_calls = [factories.call("alice/a", f"a{i}", output="{}").call_id for i in range(600)]
    b_calls = [factories.call("alice/b", f"b{i}", output="{}").call_id for i in range(10)]
    a_refs = [factories.scorer("alice/a"), factories.scorer("alice/a", "ValidXMLScorer")]
    b_ref = factories.scorer("alice/b")

    def send(project_id, ids, refs):
        from scoring.services.jobs import job_submit

        request = {"project_id": project_id, "call_ids": ids, "scorer_refs": refs}
        return job_submit(user=user, project_id=project_id, call_ids=ids, scorer_refs=refs, request=request).job

    run_worker(threads=4, SCORING_DISPATCH_WINDOW=str(window))
    a_job = send("alice/a", a_calls, a_refs)
    held_by_a = []
    a_task_ids = set(ScoringTask.objects.filter(job=a_job).values_list("pk", flat=True))
    wait_for(
        lambda: ScoringTask.objects.filter(job=a_job, status=Status.SUCCEEDED).count() >= 50,
        timeout=60,
        message="A to run",
    )
    b_job = send("alice/b", b_calls, [b_ref])
    while not finished(a_job)():
        held_by_a.append(len(broker_view().task_ids & a_task_ids))
        time.sleep(0.05)
    wait_for(finished(b_job), timeout=60, message="B to end")
    wait_for(
        lambda: ScoringJob.objects.filter(pk__in=[a_job.pk, b_job.pk], final_status="succeeded").count() == 2,
        timeout=60,
        message="both jobs stamped succeeded",
    )
    last = {job.pk: job.tasks.aggregate(last=Max("finished_at"))["last"] for job in (a_job, b_job)}
    assert last[b_job.pk] < last[a_job.pk]
    assert max(held_by_a) <= window + 16  # the window, plus messages fetched and not yet acknowledged
    assert ScorerUsage.objects.count() == 0  # free scorers are not metered
