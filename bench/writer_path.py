"""The worker's write path alone, in one thread, without Dramatiq: read a batch of tasks with one
statement, score them (built-in scorer), record the verdicts in one transaction (fenced on the
state read, as the group committer does for fast scorers); per-pair cost of each step. Shows what
one group-commit writer can do when it has the machine to itself.

    .venv/bin/python bench/writer_path.py [--pairs 20000] [--batch 64]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32, 64, 128])
    args = parser.parse_args()

    harness.setup_django()
    harness.reset_database()
    from django.contrib.auth import get_user_model

    from scoring.engine import batch
    from scoring.engine.evaluate import evaluate
    from scoring.models import ScoringTask
    from scoring.services.jobs import job_submit

    harness.make_user_and_key("bench")
    user = get_user_model().objects.get(username="bench")
    call_ids = harness.load_calls("bench/writer", args.pairs)
    refs = harness.publish_scorers("bench/writer", 1)
    print(f"machine: {harness.machine()}")
    for size in args.batch:
        request = {"project_id": "bench/writer", "call_ids": call_ids, "scorer_refs": refs}
        job = job_submit(user=user, project_id="bench/writer", call_ids=call_ids, scorer_refs=refs, request=request).job
        task_ids = list(ScoringTask.objects.filter(job=job).values_list("pk", flat=True))
        claim = score = record = 0.0
        for start in range(0, len(task_ids), size):
            t0 = time.perf_counter()
            claimed = batch.tasks_read_many(task_ids[start : start + size])
            t1 = time.perf_counter()
            verdicts = [(task, evaluate(task=task)) for task in claimed]
            t2 = time.perf_counter()
            batch.tasks_record_many(verdicts, claimed=False)
            t3 = time.perf_counter()
            claim, score, record = claim + t1 - t0, score + t2 - t1, record + t3 - t2
        n = len(task_ids)
        total = claim + score + record
        print(
            f"batch {size:>3}: per pair read {claim / n * 1e6:4.0f} us, score {score / n * 1e6:4.0f} us, "
            f"record {record / n * 1e6:4.0f} us = {total / n * 1e6:4.0f} us -> {n / total:,.0f} pairs/s in one thread"
        )


if __name__ == "__main__":
    main()
