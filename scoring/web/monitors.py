"""A project's monitors (`/<entity>/<project>/weave/monitors`) with their counts, a monitor with
its versions, and activate or deactivate through the service the weave client's publish uses."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from scoring.errors import RequestValidationError
from scoring.selectors.monitors import monitor_stats, project_monitors
from scoring.services.monitors import monitor_set_active
from scoring.weave.refs import InvalidRef, parse_object_ref
from scoring.web.common import not_found, project_page, safe_next


def _object_link(project, ref: str) -> dict:
    """A ref as a label and, when it is an object of this project, the URL of its page."""
    try:
        parsed = parse_object_ref(ref)
    except InvalidRef:
        return {"label": ref, "url": None, "ref": ref}
    url = None
    if parsed.project_id == project.project_id and parsed.kind == "object" and not parsed.extra:
        url = reverse("web-object", args=[project.entity, project.name, parsed.name, parsed.version])
    return {"label": parsed.name, "url": url, "ref": ref}


def _row(project, summary) -> dict:
    return {
        "summary": summary,
        "scorers": [_object_link(project, ref) for ref in summary.spec.scorer_refs] if summary.spec else [],
    }


@project_page
def monitors(request, project):
    rows = [_row(project, summary) for summary in project_monitors(project=project)]
    return render(request, "web/monitors.html", {"project": project, "rows": rows})


@project_page
def monitor(request, project, name: str):
    found = project_monitors(project=project, name=name)
    if not found:
        return not_found(request, f"No monitor {name} in {project.project_id}.")
    versions = [
        {"stats": stats, "link": _object_link(project, stats.ref)}
        for stats in monitor_stats(user=request.user, project_id=project.project_id, name=name)
    ]
    return render(
        request, "web/monitor.html", {"project": project, "row": _row(project, found[0]), "versions": versions}
    )


@require_POST
@project_page
def monitor_set_active_view(request, project, name: str, active: bool):
    try:
        published = monitor_set_active(user=request.user, project_id=project.project_id, name=name, active=active)
    except RequestValidationError as exc:
        for problem in exc.errors:
            messages.error(request, problem["msg"])
    else:
        state = "active" if active else "inactive"
        messages.success(request, f"{name} is {state} (version v{published.version_index}).")
    return redirect(safe_next(request, reverse("web-monitor", args=[project.entity, project.name, name])))
