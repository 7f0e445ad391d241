"""Turning recorded tasks into broker messages, one per (call, scorer) pair."""

from scoring.models import ScoringTask


def job_enqueue_tasks(*, job_id, send) -> int:
    """Send a message for each queued task of the job through the actor `send`; returns how
    many were sent. Sending twice is harmless: a task is claimed once."""
    task_ids = ScoringTask.objects.filter(job_id=job_id, status=ScoringTask.Status.QUEUED).values_list("pk", flat=True)
    count = 0
    for task_id in task_ids.iterator(chunk_size=5_000):
        send.send(task_id)
        count += 1
    return count
