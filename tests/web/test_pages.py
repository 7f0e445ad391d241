"""The pages for people through Django's test client: sign-in, the project rule (404 for another's
project on every page), the calls table with its score columns, filters and keyset pages, a call
with its scores, an object with its versions and jobs, jobs with cancel and retry, CSRF, CSP, and
escaping of hostile call inputs."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from scoring.engine.run import task_run
from scoring.models import Call, ScoringJob, ScoringTask
from scoring.services.jobs import job_submit
from tests import factories

Status = ScoringTask.Status
PROJECT = "alice/demo"


OUTPUTS = {"good": "{}", "bad": "not json", "broken": {"not": "a string"}}


def scored_job(user, call_ids=("good", "bad", "broken")) -> ScoringJob:
    """Calls scored by ValidJSONScorer: good* pass, bad* fail, broken* (not a string) make the
    scorer raise, a failed task."""
    for call_id in call_ids:
        factories.call(PROJECT, call_id=call_id, output=OUTPUTS[call_id.rstrip("0123456789")])
    ref = factories.scorer(PROJECT)
    body = {"project_id": PROJECT, "call_ids": list(call_ids), "scorer_refs": [ref]}
    job = job_submit(user=user, project_id=PROJECT, call_ids=list(call_ids), scorer_refs=[ref], request=body).job
    for task_id in job.tasks.values_list("pk", flat=True):
        task_run(task_id=task_id)
    return job


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def project_pages(job: ScoringJob) -> list[str]:
    obj_name, digest = job.scorer_refs[0].rsplit("/", 1)[1].split(":")
    return [
        "/alice/demo/weave",
        "/alice/demo/r/call/good",
        f"/alice/demo/weave/objects/{obj_name}/versions/{digest}",
        "/alice/demo/weave/jobs",
        f"/alice/demo/weave/jobs/{job.pk}",
        f"/alice/demo/weave/jobs/{job.pk}/progress",
    ]


def test_home_signed_out_explains_and_offers_sign_in(client, db):
    """Signed out, `/` says what the service is and links to sign-in and the API docs."""
    html = client.get("/").content.decode()
    assert "Sign in" in html and "/accounts/login/" in html and 'href="/docs"' in html


def test_home_lists_the_users_projects_with_counts(signed_in, user):
    """Signed in, `/` lists the user's projects with their calls (the three scored and their
    three scoring calls), scores (a failed task writes none) and running jobs, and not another user's project."""
    scored_job(user)
    factories.call("bob/secret", call_id="x")
    html = signed_in.get("/").content.decode()
    assert "alice/demo" in html and "bob/secret" not in html
    row = re.search(r"alice/demo</a></td>(.*?)</tr>", html, re.S).group(1)
    assert re.findall(r'class="num">(?:<a[^>]*>)?(\d+)', row) == ["6", "2", "0"]


def test_pages_need_sign_in(client, user):
    """A project page sends a signed-out visitor to the login page, then back."""
    response = client.get("/alice/demo/weave")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/alice/demo/weave"


def test_login_with_the_form(client, user):
    """The login form signs in with a username and password (CSRF checked) and goes to `next`."""
    csrf_client = Client(enforce_csrf_checks=True)
    page = csrf_client.get("/accounts/login/?next=/alice/demo/weave")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = csrf_client.post(
        "/accounts/login/",
        {"username": "alice", "password": "pw-alice", "next": "/alice/demo/weave", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302 and response["Location"] == "/alice/demo/weave"
    refused = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert refused.status_code == 403


def test_another_projects_user_gets_404_on_every_page(client, user, make_user):
    """bob may not see alice's project: every page of it, and its forms, answer 404, as for a
    project that does not exist."""
    job = scored_job(user)
    client.force_login(make_user("bob"))
    for url in project_pages(job):
        assert client.get(url).status_code == 404, url
        assert client.get(url.replace("alice/demo", "alice/nothing")).status_code == 404, url
    for action in ("cancel", "retry"):
        assert client.post(f"/alice/demo/weave/jobs/{job.pk}/{action}").status_code == 404
    assert (
        client.post("/alice/demo/weave/score", {"call_ids": ["good"], "scorer_ref": job.scorer_refs[0]}).status_code
        == 404
    )
    assert ScoringJob.objects.count() == 1


def test_every_page_renders_for_its_owner_with_a_csp(signed_in, user):
    """Each page answers 200 as HTML with a Content-Security-Policy that allows no inline script."""
    job = scored_job(user)
    for url in ["/", *project_pages(job)]:
        response = signed_in.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("text/html"), url
        assert "script-src 'self'" in response["Content-Security-Policy"], url
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0], url


def test_calls_table_shows_one_column_per_scorer(signed_in, user):
    """The calls table has a ValidJSONScorer column with pass for the good call and fail for the bad."""
    scored_job(user)
    html = signed_in.get("/alice/demo/weave").content.decode()
    assert '<th scope="col">ValidJSONScorer</th>' in html
    good = re.search(r'value="good".*?</tr>', html, re.S).group(0)
    bad = re.search(r'value="bad".*?</tr>', html, re.S).group(0)
    assert 'class="score pass">pass<' in good
    assert 'class="score fail">fail<' in bad


def test_filter_by_a_failed_score(signed_in, user):
    """Filtering on "ValidJSONScorer json_valid is false" keeps only the call that failed it."""
    scored_job(user, ("good", "bad", "good2", "bad2"))
    html = signed_in.get("/alice/demo/weave", {"scorer": "ValidJSONScorer", "value": "false"}).content.decode()
    shown = re.findall(r'name="call_ids" value="([^"]+)"', html)
    assert sorted(shown) == ["bad", "bad2"]
    html = signed_in.get(
        "/alice/demo/weave", {"scorer": "ValidJSONScorer", "field": "json_valid", "value": "true"}
    ).content.decode()
    assert sorted(re.findall(r'name="call_ids" value="([^"]+)"', html)) == ["good", "good2"]


def test_filter_by_op_and_time(signed_in, user):
    """The op filter keeps that op's calls; the time range keeps calls started inside it."""
    factories.call(PROJECT, call_id="a1")
    other = factories.call(PROJECT, call_id="b1")
    Call.objects.filter(pk=other.pk).update(
        op_name="weave:///alice/demo/op/other:xyz", started_at=timezone.now() - timedelta(days=3)
    )
    factories.project(PROJECT).weave_objects.create(object_id="other", digest="xyz", version_index=0, kind="op", val={})
    html = signed_in.get("/alice/demo/weave", {"op": "other"}).content.decode()
    assert re.findall(r'name="call_ids" value="([^"]+)"', html) == ["b1"]
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    html = signed_in.get("/alice/demo/weave", {"started_from": since}).content.decode()
    assert re.findall(r'name="call_ids" value="([^"]+)"', html) == ["a1"]


def test_keyset_pages_cover_every_call_once(signed_in, user):
    """Following "Next page" from the first page lists every call exactly once, newest first."""
    start = timezone.now()
    for i in range(120):
        call = factories.call(PROJECT, call_id=f"c{i:03d}")
        # Ties on started_at are broken by call id.
        Call.objects.filter(pk=call.pk).update(started_at=start - timedelta(seconds=i // 3))
    seen, url = [], "/alice/demo/weave"
    while url:
        html = signed_in.get(url).content.decode()
        seen += re.findall(r'name="call_ids" value="([^"]+)"', html)
        found = re.search(r'href="\?([^"]+)" id="next-page"', html)
        url = "/alice/demo/weave?" + found.group(1).replace("&amp;", "&") if found else None
    ids = sorted((f"c{i:03d}" for i in range(120)), reverse=True)  # call id descending breaks ties
    assert seen == sorted(ids, key=lambda c: int(c[1:]) // 3)  # started_at descending


def test_a_forged_cursor_is_a_form_error_not_a_500(signed_in, user):
    """A page cursor the server did not make shows a message on the page."""
    factories.call(PROJECT, call_id="a1")
    response = signed_in.get("/alice/demo/weave", {"after": "not-a-cursor!"})
    assert response.status_code == 200
    assert "not valid any more" in response.content.decode()


def test_bad_filter_values_are_form_errors(signed_in, user):
    """A time that is not a time, or a score filter without a value, is shown next to its field."""
    scored_job(user)
    html = signed_in.get(
        "/alice/demo/weave", {"started_from": "yesterday-ish", "scorer": "ValidJSONScorer"}
    ).content.decode()
    assert "Enter a valid date/time." in html
    assert "Say which value of the score to show" in html


def test_call_page_shows_score_scorer_and_scoring_call(signed_in, user):
    """The call page shows the inputs and output, the score with its scorer ref, and the scoring
    call with what the scorer was given and returned."""
    job = scored_job(user)
    html = signed_in.get("/alice/demo/r/call/bad").content.decode()
    assert "ValidJSONScorer" in html
    assert job.scorer_refs[0] in html
    assert "&quot;json_valid&quot;: false" in html
    assert "Scoring call: what the scorer was given and returned" in html
    assert "not json" in html


def test_call_page_draws_the_trace_tree(signed_in, user):
    """A child call's page links to its parent and draws the trace with the child under it."""
    parent = factories.call(PROJECT, call_id="p1")
    child = factories.call(PROJECT, call_id="k1")
    Call.objects.filter(pk=child.pk).update(parent_id="p1", trace_id=parent.trace_id)
    html = signed_in.get("/alice/demo/r/call/k1").content.decode()
    assert 'href="/alice/demo/r/call/p1"' in html
    tree = re.search(r'<ul class="tree" id="trace-tree">(.*?)</ul>', html, re.S).group(1)
    assert tree.index("/r/call/p1") < tree.index('aria-current="page"')
    assert 'class="depth-1"' in tree


def test_object_page_shows_value_versions_and_jobs(signed_in, user):
    """A scorer's page shows its value, its versions, and the jobs that used that version."""
    job = scored_job(user)
    obj_name, digest = job.scorer_refs[0].rsplit("/", 1)[1].split(":")
    factories.scorer(PROJECT, column_map={"output": "x"})  # a second version
    html = signed_in.get(f"/alice/demo/weave/objects/{obj_name}/versions/{digest}").content.decode()
    assert "&quot;_class_name&quot;: &quot;ValidJSONScorer&quot;" in html
    assert ">v0</strong>" in html and ">v1</a>" in html
    assert f"/alice/demo/weave/jobs/{job.pk}" in html


def test_score_selected_calls_submits_a_job(signed_in, user):
    """Posting selected calls and a scorer records a job through job_submit and shows its page."""
    factories.call(PROJECT, call_id="a1")
    factories.call(PROJECT, call_id="a2")
    ref = factories.scorer(PROJECT)
    response = signed_in.post("/alice/demo/weave/score", {"call_ids": ["a1", "a2"], "scorer_ref": ref})
    job = ScoringJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/alice/demo/weave/jobs/{job.pk}"
    assert job.task_count == 2 and job.user == user
    assert job.request == {"project_id": PROJECT, "call_ids": ["a1", "a2"], "scorer_refs": [ref]}


def test_score_with_unknown_calls_says_why(signed_in, user):
    """Scoring a call id that does not exist records nothing and shows the service's message."""
    ref = factories.scorer(PROJECT)
    factories.call(PROJECT, call_id="a1")
    response = signed_in.post(
        "/alice/demo/weave/score", {"call_ids": ["ghost"], "scorer_ref": ref, "next": "/alice/demo/weave"}, follow=True
    )
    assert ScoringJob.objects.count() == 0
    assert "Call &#x27;ghost&#x27; does not exist in this project" in response.content.decode()


def test_score_form_needs_csrf(user):
    """The score form is refused without its CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    ref = factories.scorer(PROJECT)
    factories.call(PROJECT, call_id="a1")
    assert client.post("/alice/demo/weave/score", {"call_ids": ["a1"], "scorer_ref": ref}).status_code == 403
    assert ScoringJob.objects.count() == 0


def test_job_page_groups_failures_and_retries(signed_in, user):
    """The job page groups failures by error type with an example call; retry queues them again,
    cancel cancels what has not run."""
    job = scored_job(user)
    html = signed_in.get(f"/alice/demo/weave/jobs/{job.pk}").content.decode()
    assert 'id="job-status" class="status status-partial">partial<' in html
    failures = re.search(r'<table id="job-failures">(.*?)</table>', html, re.S).group(1)
    assert "TypeError" in failures and "/alice/demo/r/call/broken" in failures
    signed_in.post(f"/alice/demo/weave/jobs/{job.pk}/retry")
    assert job.tasks.filter(status=Status.PENDING).count() == 1  # again, for the dispatch window
    signed_in.post(f"/alice/demo/weave/jobs/{job.pk}/cancel")
    assert job.tasks.filter(status=Status.CANCELLED).count() == 1


def test_progress_part_polls_until_the_job_ends(signed_in, user):
    """The progress block asks htmx to poll while tasks are unfinished, and stops once they are done."""
    factories.call(PROJECT, call_id="a1")
    ref = factories.scorer(PROJECT)
    job = job_submit(
        user=user, project_id=PROJECT, call_ids=["a1"], scorer_refs=[ref], request={"project_id": PROJECT}
    ).job
    running = signed_in.get(f"/alice/demo/weave/jobs/{job.pk}/progress", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in running and ">queued<" in running
    task_run(task_id=job.tasks.get().pk)
    done = signed_in.get(f"/alice/demo/weave/jobs/{job.pk}/progress", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in done and ">succeeded<" in done


HOSTILE = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>"


def deep(levels: int):
    value: object = HOSTILE
    for _ in range(levels):
        value = {"k": [value]}
    return value


def test_hostile_call_inputs_are_escaped(signed_in, user):
    """Script tags, a long string and deeply nested JSON in a call's inputs, op and output render
    as text on the calls page and the call page, never as markup."""
    call = factories.call(PROJECT, call_id="evil", inputs={"q": HOSTILE, "long": "x" * 200_000, "deep": deep(300)})
    Call.objects.filter(pk=call.pk).update(op_name=HOSTILE, display_name=HOSTILE, output=HOSTILE, exception=None)
    for url in ("/alice/demo/weave", "/alice/demo/r/call/evil"):
        response = signed_in.get(url)
        html = response.content.decode()
        assert response.status_code == 200, url
        assert "<script>alert" not in html and "<img src=x" not in html, url
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html, url
    call_html = signed_in.get("/alice/demo/r/call/evil").content.decode()
    assert "more characters)" in call_html  # the long string is cut, not sent whole
    assert len(call_html) < 200_000


def test_api_routes_and_json_404_still_answer(client, api, db):
    """The pages' routes leave the API alone: `/health`-style routes answer as before, and an
    unknown route is still a JSON 404."""
    assert api.get("/server_info").status_code == 200
    missing = client.get("/no/such/route/here")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not found."}
