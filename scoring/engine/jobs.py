"""A job's end: once no task of it is left to run, its finish time, final status and counts are
stamped, after the commit of its last result (or by the reconciler, for a worker that stopped
between the two)."""

from django.db.models import Exists, OuterRef
from django.utils import timezone

from scoring.engine.bulk import hot_cursor
from scoring.engine.states import UNFINISHED
from scoring.models import ScoringJob, ScoringTask
from scoring.selectors.jobs import job_progress


def job_finish_if_done(*, job_id) -> None:
    """Once no task is left to run, record the job's finish time, final status and counts. Call it
    after commit, so that of two tasks finishing together the later one sees both."""
    if ScoringTask.objects.filter(job_id=job_id, status__in=UNFINISHED).exists():
        return
    progress = job_progress(job_id=job_id)
    ScoringJob.objects.filter(pk=job_id, finished_at__isnull=True).update(
        finished_at=timezone.now(), final_status=progress.status, final_counts=progress.counts
    )


DONE_JOBS_SQL = f"""
SELECT j.id FROM unnest(%(jobs)s::uuid[]) AS j(id)
WHERE NOT EXISTS (
    SELECT 1 FROM scoring_scoringtask t
    WHERE t.job_id = j.id AND t.status IN ({", ".join(f"'{status}'" for status in UNFINISHED)})
)
"""


def jobs_finish_if_done(job_ids: set) -> None:
    """job_finish_if_done for each job, after the commit of a batch (PostgreSQL): one prepared
    statement finds those with no task left to run, the rare ones that then need the full check."""
    with hot_cursor() as cursor:
        cursor.execute(DONE_JOBS_SQL, {"jobs": list(job_ids)}, prepare=True)
        done = [row[0] for row in cursor.fetchall()]
    for job_id in done:
        job_finish_if_done(job_id=job_id)


def jobs_finish_unstamped() -> int:
    """job_finish_if_done for every job not yet stamped finished that has no task left to run:
    its last result was recorded by a worker that stopped before the stamp. Returns how many."""
    unfinished = ScoringTask.objects.filter(job=OuterRef("pk"), status__in=UNFINISHED)
    done = list(
        ScoringJob.objects.filter(finished_at__isnull=True).exclude(Exists(unfinished)).values_list("pk", flat=True)
    )
    for job_id in done:
        job_finish_if_done(job_id=job_id)
    return len(done)
