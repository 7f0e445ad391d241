"""The calls table (`/<entity>/<project>/weave`), a call (`/<entity>/<project>/r/call/<id>`), and
"score with…" from either, through the service behind `POST /calls/score`."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from scoring.errors import RequestValidationError
from scoring.selectors.call_detail import call_detail
from scoring.selectors.calls_table import CursorInvalid, ScoreFilter, calls_table, project_ops, project_scorers
from scoring.services.jobs import job_submit
from scoring.web.common import not_found, project_page, safe_next
from scoring.web.forms import CallsFilterForm, ScoreForm


@project_page
def calls(request, project):
    scorers = project_scorers(project=project)
    form = CallsFilterForm(request.GET, ops=project_ops(project=project), scorers=scorers)
    page = None
    if form.is_valid():
        data = form.cleaned_data
        scorer = form.scorers.get(data["scorer"] or "")
        score_filter = ScoreFilter(scorer, data["field"], data["value"]) if scorer else None
        try:
            page = calls_table(
                project=project,
                op=data["op"] or None,
                started_from=data["started_from"],
                started_to=data["started_to"],
                score_filter=score_filter,
                cursor=request.GET.get("after") or None,
                scorers=scorers,
            )
        except CursorInvalid:
            form.add_error(None, "That page link is not valid any more; start from the first page.")
    next_query = None
    if page is not None and page.next_cursor:
        query = request.GET.copy()
        query["after"] = page.next_cursor
        next_query = query.urlencode()
    first_query = request.GET.copy()
    first_query.pop("after", None)
    return render(
        request,
        "web/calls.html",
        {
            "project": project,
            "form": form,
            "page": page,
            "scorers": scorers,
            "next_query": next_query,
            "first_query": first_query.urlencode(),
            "is_later_page": bool(request.GET.get("after")),
        },
    )


@project_page
def call(request, project, call_id: str):
    detail = call_detail(project=project, call_id=call_id)
    if detail is None:
        return not_found(request, f"No call {call_id} in {project.project_id}.")
    return render(
        request,
        "web/call.html",
        {"project": project, "detail": detail, "call": detail.call, "scorers": project_scorers(project=project)},
    )


@require_POST
@project_page
def score(request, project):
    """Submit a job for the selected calls and one scorer, then show its page."""
    form = ScoreForm(request.POST, scorers=project_scorers(project=project))
    back = safe_next(request, reverse("web-calls", args=[project.entity, project.name]))
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
        return redirect(back)
    call_ids, ref = form.cleaned_data["call_ids"], form.cleaned_data["scorer_ref"]
    body = {"project_id": project.project_id, "call_ids": call_ids, "scorer_refs": [ref]}
    try:
        submitted = job_submit(
            user=request.user, project_id=project.project_id, call_ids=call_ids, scorer_refs=[ref], request=body
        )
    except RequestValidationError as exc:
        for problem in exc.errors:
            messages.error(request, problem["msg"])
        return redirect(back)
    messages.success(request, f"Scoring {submitted.task_count} pair(s).")
    return redirect("web-job", project.entity, project.name, submitted.job.pk)
