"""Reads for the metrics endpoint: tasks by state and unfinished jobs, each one cheap query."""

from django.db import connection
from django.db.models import Count

from scoring.models import TASK_FINISHED, TASK_UNFINISHED, ScoringJob, ScoringTask


def tasks_unfinished_by_state() -> dict[str, int]:
    """Unfinished tasks by state: one grouped query that the partial index of unfinished tasks
    answers, however many finished tasks the table holds."""
    counts = dict.fromkeys(TASK_UNFINISHED, 0)
    rows = ScoringTask.objects.filter(status__in=TASK_UNFINISHED).values_list("status").annotate(n=Count("id"))
    for status, n in rows.order_by():
        counts[status] = n
    return counts


FINISHED_SQL = """
SELECT c.key, sum(c.value::bigint)
FROM scoring_scoringjob j, jsonb_each_text(j.final_counts) AS c(key, value)
WHERE j.finished_at IS NOT NULL AND c.key IN ({states})
GROUP BY c.key
"""


def tasks_finished_by_state() -> dict[str, int]:
    """Tasks of finished jobs by final state, from the counts stamped on each job when it finished
    (a scan of the jobs, never of the tasks; a job's tasks count here once the job is stamped)."""
    counts = dict.fromkeys(TASK_FINISHED, 0)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(FINISHED_SQL.format(states=", ".join(["%s"] * len(TASK_FINISHED))), list(TASK_FINISHED))
            for state, n in cursor.fetchall():
                counts[state] = int(n)
        return counts
    for final in ScoringJob.objects.filter(finished_at__isnull=False).values_list("final_counts", flat=True):
        for state in TASK_FINISHED:
            counts[state] += int((final or {}).get(state, 0))
    return counts


def jobs_unfinished() -> int:
    """Jobs not yet stamped finished (the partial index of unfinished jobs)."""
    return ScoringJob.objects.filter(finished_at__isnull=True).count()
