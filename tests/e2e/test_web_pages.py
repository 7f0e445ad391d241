"""The pages for people in a real headless Chromium against a live server and a real worker: calls
logged by the official weave client, the three links it prints, filtering by a failed score,
scoring selected calls and watching the job succeed, a monitor's counts and its deactivation, and
the project rule on every page. Screenshots of each page go to test-artifacts/."""

import shutil

import pytest

from scoring.models import TASK_UNFINISHED, ScoringJob, ScoringTask
from tests.conftest import wait_for
from tests.test_admin import ARTIFACTS
from tests.weave_offline import loopback_only, no_version_check, weave

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("chromium") or shutil.which("chromium-browser")),
        reason="Debian's chromium is not installed (make test installs it as root)",
    ),
]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def weave_client(live_server, api_key, monkeypatch):
    no_version_check(monkeypatch)
    monkeypatch.setenv("WANDB_BASE_URL", live_server.url)
    monkeypatch.setenv("WF_TRACE_SERVER_URL", live_server.url)
    monkeypatch.setenv("WANDB_API_KEY", api_key)
    monkeypatch.setenv("WEAVE_USE_SERVER_CACHE", "false")
    with loopback_only() as attempts:
        client = weave.init("alice/demo")
        yield client
        weave.finish()
    assert attempts == []


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread, and Django then refuses the test's
    # own (synchronous) database reads unless told that they are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


def sign_in(browser, base_url: str, username: str, next_url: str, **context):
    page = browser.new_page(**context)
    page.goto(f"{base_url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-" + username)
    with page.expect_navigation():
        page.keyboard.press("Enter")  # the form works from the keyboard
    return page


def job_done(job_id) -> bool:
    return not ScoringTask.objects.filter(job_id=job_id, status__in=TASK_UNFINISHED).exists()


def test_weave_links_filter_score_and_watch_the_job(weave_client, worker, browser, live_server, make_user):
    """The project, call and object links the weave client prints open pages that show the call,
    its score and the scorer; filtering by "json_valid is false" keeps the failing call; scoring
    selected calls from the table leads to the job page, which reaches "succeeded" live."""
    from weave.scorers import ValidJSONScorer
    from weave.trace import urls

    @weave.op
    def answer(question: str) -> str:
        return '{"answer": "' + question.upper() + '"}'

    @weave.op
    def chat(question: str) -> str:
        return f"I think the answer to {question!r} is four."

    _, good = answer.call("what is 2+2?")
    _, prose = chat.call("what is 2+2?")
    scorer_ref = weave.publish(ValidJSONScorer())
    weave_client.flush()
    res = dict(
        weave_client.server.calls_score(
            {"project_id": "alice/demo", "call_ids": [good.id, prose.id], "scorer_refs": [scorer_ref.uri()]}
        )
    )
    wait_for(lambda: job_done(res["job_id"]), timeout=90, message="the first scoring job")

    project_url = urls.project_weave_root_url("alice", "demo")
    call_url = good.ui_url
    object_url = urls.object_version_path(scorer_ref.entity, scorer_ref.project, scorer_ref.name, scorer_ref.digest)
    assert all(url.startswith(live_server.url) for url in (project_url, call_url, object_url))

    page = sign_in(browser, live_server.url, "alice", project_url.removeprefix(live_server.url))
    assert page.url == project_url
    page.wait_for_selector("#calls")
    table = page.inner_text("#calls")
    assert "ValidJSONScorer" in table and "answer" in table and "chat" in table
    page.screenshot(path=str(ARTIFACTS / "web-calls.png"), full_page=True)

    page.goto(call_url)
    facts, scores = page.inner_text("#call-facts"), page.inner_text("#h-scores >> xpath=..")
    assert good.id in facts
    assert "json_valid" in scores and "true" in scores and scorer_ref.uri() in scores
    assert "WHAT IS 2+2?" in page.inner_text("#call-output")
    page.screenshot(path=str(ARTIFACTS / "web-call.png"), full_page=True)

    page.goto(object_url)
    assert "ValidJSONScorer" in page.inner_text("#object-val")
    assert "v0" in page.inner_text("#object-versions")
    assert res["job_id"][:8] in page.inner_text("#h-jobs >> xpath=..")
    page.screenshot(path=str(ARTIFACTS / "web-object.png"), full_page=True)

    page.goto(project_url)
    page.select_option("#id_scorer", "ValidJSONScorer")
    page.fill("#id_value", "false")
    page.click("#apply-filters")
    page.wait_for_selector("#calls")
    shown = page.locator("input.select-call").evaluate_all("boxes => boxes.map(b => b.value)")
    assert shown == [prose.id]
    page.screenshot(path=str(ARTIFACTS / "web-calls-filtered.png"), full_page=True)

    page.goto(project_url)
    page.check("#select-all")  # every call on the page, the scorings of the first job among them
    assert page.locator("input.select-call:checked").count() == page.locator("input.select-call").count() > 2
    page.uncheck("#select-all")
    for call in (good, prose):
        page.check(f"input.select-call[value='{call.id}']")
    page.select_option("#score-with", scorer_ref.uri())
    page.click("#score-selected")
    page.wait_for_selector("#job-progress")
    job = ScoringJob.objects.order_by("-created_at").first()
    assert page.url.endswith(f"/alice/demo/weave/jobs/{job.pk}")
    page.wait_for_selector("#job-status:text-is('succeeded')", timeout=60_000)  # updated by htmx polling
    assert "2 succeeded" in page.inner_text("#job-counts")
    page.screenshot(path=str(ARTIFACTS / "web-job.png"), full_page=True)

    page.goto(f"{live_server.url}/alice/demo/weave/jobs")
    assert str(job.pk)[:8] in page.inner_text("table.jobs")
    page.screenshot(path=str(ARTIFACTS / "web-jobs.png"), full_page=True)
    page.goto(f"{live_server.url}/")
    assert "alice/demo" in page.inner_text("main")
    page.screenshot(path=str(ARTIFACTS / "web-home.png"), full_page=True)

    narrow = sign_in(
        browser,
        live_server.url,
        "alice",
        call_url.removeprefix(live_server.url),
        viewport={"width": 390, "height": 844},
    )
    narrow.wait_for_selector("#call-facts")
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off a phone's screen
    narrow.screenshot(path=str(ARTIFACTS / "web-call-narrow.png"), full_page=True)

    make_user("bob")
    other = sign_in(browser, live_server.url, "bob", "/")
    for url in (project_url, call_url, object_url, f"{live_server.url}/alice/demo/weave/jobs/{job.pk}"):
        response = other.goto(url)
        assert response.status == 404, url
        assert "Not found" in other.inner_text("h1"), url
    other.screenshot(path=str(ARTIFACTS / "web-not-found.png"), full_page=True)


def monitor_settled(count: int) -> bool:
    tasks = ScoringTask.objects.filter(job__source="monitor")
    return tasks.count() >= count and not tasks.filter(status__in=TASK_UNFINISHED).exists()


def test_monitors_page_shows_counts_and_deactivates(weave_client, worker, browser, live_server, make_user):
    """A monitor activated with the weave client scores new calls of its op; the monitors page,
    reached from the calls page's navigation, shows its counts and links its scorer; deactivating
    it from the keyboard publishes a version the page shows inactive and the weave client reads
    back as inactive; the monitor's page lists both versions; another user gets 404."""
    from weave.scorers import ValidJSONScorer

    @weave.op
    def answer(question: str) -> str:
        return '{"answer": "' + question.upper() + '"}'

    first = weave.Monitor(name="json-check", op_names=["answer"], scorers=[ValidJSONScorer()]).activate()
    for i in range(3):
        answer(f"q{i}")
    weave_client.flush()
    wait_for(lambda: monitor_settled(3), timeout=90, message="the monitor's three tasks")

    page = sign_in(browser, live_server.url, "alice", "/alice/demo/weave")
    with page.expect_navigation():
        page.get_by_role("navigation", name="Site").get_by_role("link", name="Monitors").click()
    assert page.url == f"{live_server.url}/alice/demo/weave/monitors"
    row = page.locator("tr[data-monitor='json-check']")
    cells = [cell.strip() for cell in row.locator("td").all_inner_texts()]
    assert cells[:8] == ["active", "answer", "100%", "ValidJSONScorer", "3", "0", "3", "0"]
    assert cells[8].endswith(" s") and cells[9].endswith(" s")
    assert (
        row.get_by_role("link", name="ValidJSONScorer")
        .get_attribute("href")
        .startswith("/alice/demo/weave/objects/ValidJSONScorer/versions/")
    )
    page.screenshot(path=str(ARTIFACTS / "web-monitors.png"), full_page=True)

    row.get_by_role("button", name="Deactivate json-check").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "json-check is inactive (version v1)" in page.inner_text(".messages")
    assert page.locator("tr[data-monitor='json-check'] td.monitor-state").inner_text() == "inactive"
    assert weave.ref("json-check:latest").get().active is False

    with page.expect_navigation():
        page.get_by_role("link", name="json-check").click()
    versions = page.locator("#monitor-versions tbody tr")
    assert versions.count() == 2
    v0 = versions.nth(1)
    assert (v0.locator("th").inner_text(), v0.locator(".status").inner_text()) == ("v0", "active")
    assert v0.locator("th a").get_attribute("href").endswith(first.digest)
    assert versions.nth(0).locator(".status").inner_text() == "inactive"
    page.screenshot(path=str(ARTIFACTS / "web-monitor.png"), full_page=True)

    make_user("bob")
    other = sign_in(browser, live_server.url, "bob", "/")
    for url in ("/alice/demo/weave/monitors", "/alice/demo/weave/monitors/json-check"):
        assert other.goto(live_server.url + url).status == 404, url
