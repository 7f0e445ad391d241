"""Reads: job progress and status, derived from the job's tasks with one grouped query."""

from dataclasses import dataclass

from django.db.models import Count, Min

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
    def finished(self) -> int:
        return self.total - self.unfinished

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


@dataclass(frozen=True)
class JobRow:
    job: ScoringJob
    progress: JobProgress


@dataclass(frozen=True)
class FailureGroup:
    """The failed tasks of a job that share an error type: how many, a message, a few calls."""

    error_type: str
    count: int
    message: str
    call_ids: list[str]


def project_jobs(*, project, scorer_ref: str | None = None, limit: int = 50) -> list[JobRow]:
    """The project's latest jobs (those using a scorer ref, when given) with their progress: the
    stamped counts of finished jobs, one grouped count for the others."""
    jobs = ScoringJob.objects.filter(project=project).select_related("user").order_by("-created_at")
    if scorer_ref:
        jobs = jobs.filter(scorer_refs__contains=[scorer_ref])
    jobs = list(jobs[:limit])
    live = jobs_progress(job_ids=[j.pk for j in jobs if not j.final_counts])
    rows = []
    for job in jobs:
        if job.final_counts:
            counts = {**_empty_counts(), **{k: v for k, v in job.final_counts.items() if k in Status.values}}
            rows.append(JobRow(job, JobProgress(counts)))
        else:
            rows.append(JobRow(job, live[job.pk]))
    return rows


def job_in_project(*, project, job_id) -> ScoringJob | None:
    return ScoringJob.objects.select_related("project", "user").filter(project=project, pk=job_id).first()


def job_failures(*, job_id, groups: int = 20, examples: int = 3) -> list[FailureGroup]:
    """The job's failures grouped by error type, largest group first."""
    failed = ScoringTask.objects.filter(job_id=job_id, status=Status.FAILED)
    counted = (
        failed.values("error_type").annotate(n=Count("id"), message=Min("error_message")).order_by("-n", "error_type")
    )
    result = []
    for row in counted[:groups]:
        call_ids = list(
            failed.filter(error_type=row["error_type"])
            .order_by("pk")
            .values_list("call__call_id", flat=True)[:examples]
        )
        result.append(FailureGroup(row["error_type"] or "error", row["n"], row["message"], call_ids))
    return result
