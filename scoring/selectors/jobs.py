"""Reads: job progress and status, derived from the job's tasks with one grouped query."""

from dataclasses import dataclass

from django.db.models import Count

from scoring.errors import NotFound
from scoring.models import TASK_UNFINISHED, JobStatus, ScoringJob, ScoringTask
from scoring.selectors.projects import user_may_access

Status = ScoringTask.Status


@dataclass(frozen=True)
class JobProgress:
    """Task counts of a job by status, and the job status they imply."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def unfinished(self) -> int:
        return sum(self.counts[s] for s in TASK_UNFINISHED)

    @property
    def status(self) -> JobStatus:
        c = self.counts
        if self.unfinished:
            untouched = c[Status.QUEUED] + c[Status.PENDING] == self.total
            return JobStatus.QUEUED if untouched else JobStatus.RUNNING
        if c[Status.CANCELLED]:
            return JobStatus.CANCELLED
        if c[Status.FAILED] and not c[Status.SUCCEEDED]:
            return JobStatus.FAILED
        if c[Status.FAILED]:
            return JobStatus.PARTIAL
        return JobStatus.SUCCEEDED


def _empty_counts() -> dict[str, int]:
    return {status: 0 for status in Status.values}


def job_progress(*, job_id) -> JobProgress:
    counts = _empty_counts()
    rows = ScoringTask.objects.filter(job_id=job_id).values_list("status").annotate(n=Count("id")).order_by()
    for status, n in rows:
        counts[status] = n
    return JobProgress(counts)


def jobs_progress(*, job_ids) -> dict:
    """Progress of several jobs (a page of the admin list) in one grouped query over their tasks."""
    progress = {job_id: _empty_counts() for job_id in job_ids}
    rows = (
        ScoringTask.objects.filter(job_id__in=list(job_ids))
        .values_list("job_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for job_id, status, n in rows:
        progress[job_id][status] = n
    return {job_id: JobProgress(counts) for job_id, counts in progress.items()}


def job_for_user(*, user, job_id) -> ScoringJob:
    """The job, if it exists and the user may see its project; else NotFound (not
    PermissionDenied: job ids of other projects are not confirmed)."""
    job = ScoringJob.objects.select_related("project", "user").filter(pk=job_id).first()
    if job is None or not user_may_access(user, job.project.entity):
        raise NotFound(f"No scoring job {job_id}.")
    return job


def job_tasks(*, job_id, status: str | None = None, after: int | None = None, limit: int = 100):
    """A page of a job's tasks in id order (keyset pagination: pass the last id as `after`)."""
    tasks = (
        ScoringTask.objects.filter(job_id=job_id)
        .select_related("call", "scorer", "feedback")
        .only(
            "status",
            "attempts",
            "error_type",
            "error_message",
            "started_at",
            "finished_at",
            "retry_at",
            "scoring_call_id",
            "cost_usd",
            "call__call_id",
            "scorer__object_id",
            "scorer__digest",
            "feedback__id",
        )
        .order_by("pk")
    )
    if status:
        tasks = tasks.filter(status=status)
    if after is not None:
        tasks = tasks.filter(pk__gt=after)
    return list(tasks[:limit])
