"""Fair share: while a large job of project A runs, small jobs of project B are submitted one after
another; B's latency (submit until its last result) and A's throughput, with the dispatch window
and with a window as large as the job (every message in the broker at once, as before windows).

    .venv/bin/python bench/fairness.py [--pairs 100000] [--small 10] [--processes 2] [--threads 16]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def submit(http, project_id, call_ids, refs) -> tuple[str, float]:
    started = time.time()
    response = http.post("/calls/score", json={"project_id": project_id, "call_ids": call_ids, "scorer_refs": refs})
    assert response.status_code == 200, response.text[:300]
    return response.json()["job_id"], started


def last_finish(job_id) -> float:
    from django.db.models import Max

    from scoring.models import ScoringTask

    return ScoringTask.objects.filter(job_id=job_id).aggregate(last=Max("finished_at"))["last"].timestamp()


def running(job_id) -> bool:
    from scoring.models import TASK_UNFINISHED, ScoringTask

    return ScoringTask.objects.filter(job_id=job_id, status__in=TASK_UNFINISHED).exists()


def one_run(http, a_calls, a_refs, b_calls, b_ref, *, gap: float) -> tuple[float, list[float]]:
    """A's throughput (pairs/s, submit to last result) and B's latencies (s) during A's run."""
    a_job, a_started = submit(http, "bench/a", a_calls, a_refs)
    latencies = []
    time.sleep(gap)
    while running(a_job):
        b_job, b_started = submit(http, "bench/b", b_calls, [b_ref])
        while running(b_job):
            time.sleep(0.02)
        latencies.append(last_finish(b_job) - b_started)
        time.sleep(gap)
    pairs = len(a_calls) * len(a_refs)
    # B's jobs finished while A ran: their pairs are not A's; A's own rate is what it finished.
    return pairs / (last_finish(a_job) - a_started), latencies


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between one B job's end and the next")
    parser.add_argument("--window", type=int, default=None, help="SCORING_DISPATCH_WINDOW (default: the setting's)")
    parser.add_argument("--baseline", action="store_true", help="also run with one window as large as the job")
    args = parser.parse_args()

    harness.setup_django()
    harness.reset_database()
    harness.flush_broker()
    import httpx

    key = harness.make_user_and_key("bench")
    a_calls = harness.load_calls("bench/a", args.pairs // 2, prefix="a")
    a_refs = harness.publish_scorers("bench/a", 2)
    b_calls = harness.load_calls("bench/b", args.small, prefix="b")
    [b_ref] = harness.publish_scorers("bench/b", 1)
    print(f"machine: {harness.machine()}")
    print(f"workers: rundramatiq --processes {args.processes} --threads {args.threads}")
    configs = [("window", {} if args.window is None else {"SCORING_DISPATCH_WINDOW": str(args.window)})]
    if args.baseline:
        configs.append(("no window", {"SCORING_DISPATCH_WINDOW": str(args.pairs * 2)}))
    for name, env in configs:
        harness.flush_broker()
        with harness.web_server(workers=1), harness.worker_processes(args.processes, args.threads, **env):
            time.sleep(3)  # let the worker processes boot
            http = httpx.Client(base_url=f"http://127.0.0.1:{harness.PORT}", auth=("api", key), timeout=300)
            rate, latencies = one_run(http, a_calls, a_refs, b_calls, b_ref, gap=args.gap)
        print(
            f"{name} ({env.get('SCORING_DISPATCH_WINDOW', 'default')}): A {args.pairs:,} pairs at {rate:,.0f} pairs/s; "
            f"B ({args.small} pairs) x {len(latencies)}: p50 {statistics.median(latencies):.2f} s, "
            f"min {min(latencies):.2f} s, p90 {harness.percentile(latencies, 90):.2f} s, max {max(latencies):.2f} s"
        )


if __name__ == "__main__":
    main()
