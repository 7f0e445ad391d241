"""Scoring jobs of a project: the list, a job with live progress and its failures by reason, and
cancel and retry-failed through the same services as the API."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from scoring.selectors.jobs import job_failures, job_in_project, job_progress, project_jobs
from scoring.services.jobs import job_cancel, job_retry_failed
from scoring.web.common import not_found, project_page


@project_page
def jobs(request, project):
    return render(request, "web/jobs.html", {"project": project, "jobs": project_jobs(project=project)})


def _job_context(project, job) -> dict:
    progress = job_progress(job_id=job.pk)
    return {"project": project, "job": job, "progress": progress, "done": not progress.unfinished}


@project_page
def job(request, project, job_id):
    found = job_in_project(project=project, job_id=job_id)
    if found is None:
        return not_found(request, f"No job {job_id} in {project.project_id}.")
    context = _job_context(project, found)
    context["failures"] = job_failures(job_id=found.pk)
    return render(request, "web/job.html", context)


@project_page
def job_progress_part(request, project, job_id):
    """The progress block alone, polled by htmx while the job runs."""
    found = job_in_project(project=project, job_id=job_id)
    if found is None:
        return not_found(request)
    return render(request, "web/_job_progress.html", _job_context(project, found))


@require_POST
@project_page
def job_cancel_view(request, project, job_id):
    found = job_in_project(project=project, job_id=job_id)
    if found is None:
        return not_found(request)
    messages.success(request, f"{job_cancel(user=request.user, job_id=found.pk)} task(s) cancelled.")
    return redirect("web-job", project.entity, project.name, found.pk)


@require_POST
@project_page
def job_retry_view(request, project, job_id):
    found = job_in_project(project=project, job_id=job_id)
    if found is None:
        return not_found(request)
    messages.success(request, f"{job_retry_failed(user=request.user, job_id=found.pk)} failed task(s) queued again.")
    return redirect("web-job", project.entity, project.name, found.pk)
