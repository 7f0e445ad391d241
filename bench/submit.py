"""Benchmark 1 and 4 (web side): `POST /calls/score` latency through gunicorn for 1,000, 10,000 and
100,000 pairs (calls x 10 scorers), p50/p95, against a raw COPY of the same task rows in the same
run, and the peak RSS of the web process during the 100,000-pair submits.

    .venv/bin/python bench/submit.py [--runs 7]
"""

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

SIZES = [(100, 10), (1_000, 10), (10_000, 10)]  # calls x scorers = 1k, 10k, 100k pairs


def raw_copy_seconds(job_fields: dict, call_pks: list[int], scorer_pks: list[int]) -> float:
    """The same rows a submit writes, by COPY into the same task table (same indexes and
    constraints), committed; then deleted again."""
    from django.db import connection, transaction

    from scoring.models import ScoringJob

    job = ScoringJob.objects.create(**job_fields)
    started = time.perf_counter()
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY scoring_scoringtask (job_id, call_id, scorer_id, status, attempts, retried_at_attempt, "
            "error_type, error_message) FROM STDIN"
        ) as copy,
    ):
        for call_pk in call_pks:
            for scorer_pk in scorer_pks:
                copy.write_row((job.pk, call_pk, scorer_pk, "pending", 0, 0, "", ""))
    elapsed = time.perf_counter() - started
    job.delete()
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    harness.setup_django()
    harness.reset_database()
    harness.flush_broker()
    import httpx
    from django.contrib.auth import get_user_model

    from scoring.models import Call, Object, Project

    key = harness.make_user_and_key("bench")
    call_ids = harness.load_calls("bench/submit", max(c for c, _ in SIZES))
    refs = harness.publish_scorers("bench/submit", max(s for _, s in SIZES))
    project = Project.objects.get(entity="bench", name="submit")
    user = get_user_model().objects.get(username="bench")
    call_pk = dict(Call.objects.filter(project=project).values_list("call_id", "pk"))
    scorer_pks = list(Object.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))

    print(f"machine: {harness.machine()}")
    results = []
    with harness.web_server(workers=2) as web:
        client = httpx.Client(base_url=f"http://127.0.0.1:{harness.PORT}", auth=("api", key), timeout=300)
        for calls, scorers in SIZES:
            body = {"project_id": "bench/submit", "call_ids": call_ids[:calls], "scorer_refs": refs[:scorers]}
            timings, copies = [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                response = client.post("/calls/score", json=body)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text[:500]
                source = {"project": project, "user": user, "wb_user_id": "x", "request": {}, "id": uuid.uuid4()}
                copies.append(raw_copy_seconds(source, [call_pk[c] for c in call_ids[:calls]], scorer_pks[:scorers]))
            pairs = calls * scorers
            p50, p95 = harness.percentile(timings, 50), harness.percentile(timings, 95)
            copy50 = harness.percentile(copies, 50)
            peak = max(harness.rss_kb(pid, "VmHWM") for pid in harness.children(web.pid)) // 1024
            results.append((pairs, p50, p95, copy50, peak))
            print(
                f"{pairs:>7,} pairs: p50 {p50 * 1000:8.1f} ms  p95 {p95 * 1000:8.1f} ms  "
                f"raw COPY p50 {copy50 * 1000:7.1f} ms  ratio {p50 / copy50:4.1f}x  web peak RSS {peak} MB"
            )
            harness.flush_broker()  # the benchmark measures submit, not the queue
    return results


if __name__ == "__main__":
    main()
