"""Benchmark 2 (and 4, worker side): end-to-end throughput with built-in scorers, from submit until
the last result is committed, against the rate of a no-op actor through the same broker and worker
settings in the same run; and worker RSS before and after the pairs.

    .venv/bin/python bench/throughput.py [--pairs 20000] [--processes 2] [--threads 16]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def wait_drained(client, namespace: str, queue: str = "scoring", timeout: float = 600) -> float:
    """Seconds until the queue holds no message, queued or in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.hlen(f"{namespace}:{queue}.msgs") == 0 and client.llen(f"{namespace}:{queue}") == 0:
            return time.monotonic()
        time.sleep(0.02)
    raise TimeoutError("queue not drained")


def noop_rate(count: int, *, pipelined: bool) -> float:
    """Messages per second of the no-op actor, from the first send until the queue is drained.
    pipelined=False: a driver sends them one by one while the workers consume (how the project's
    performance notes measure the queue's own limit); True: enqueued in pipelines, as a job's
    fan-out does, which measures consumption alone."""
    import dramatiq

    from scoring.engine.actors import ping
    from scoring.engine.broker import enqueue_many

    broker = dramatiq.get_broker()
    started = time.monotonic()
    if pipelined:
        enqueue_many(ping, (((), {}) for _ in range(count)))
    else:
        for _ in range(count):
            ping.send()
    ended = wait_drained(broker.client, broker.namespace)
    return count / (ended - started)


def scoring_rate(http, project_id: str, call_ids: list[str], refs: list[str]) -> tuple[float, int]:
    from django.db.models import Max

    from scoring.models import TASK_UNFINISHED, ScoringTask

    started = time.monotonic()
    started_wall = time.time()
    response = http.post("/calls/score", json={"project_id": project_id, "call_ids": call_ids, "scorer_refs": refs})
    assert response.status_code == 200, response.text[:300]
    job_id = response.json()["job_id"]
    pairs = response.json()["task_count"]
    unfinished = ScoringTask.objects.filter(job_id=job_id, status__in=TASK_UNFINISHED)
    while unfinished.exists():
        time.sleep(0.05)
        if time.monotonic() - started > 900:
            raise TimeoutError("job did not finish")
    last = ScoringTask.objects.filter(job_id=job_id).aggregate(last=Max("finished_at"))["last"].timestamp()
    succeeded = ScoringTask.objects.filter(job_id=job_id, status="succeeded").count()
    assert succeeded == pairs, f"{succeeded} of {pairs} succeeded"
    return pairs / (last - started_wall), pairs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--scorers", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--memory-pairs", type=int, default=0, help="also score this many more pairs, for RSS")
    parser.add_argument("--memory-rounds", type=int, default=1, help="how many times to score --memory-pairs")
    args = parser.parse_args()

    harness.setup_django()
    harness.reset_database()
    harness.flush_broker()
    import httpx

    calls = args.pairs // args.scorers
    key = harness.make_user_and_key("bench")
    call_ids = harness.load_calls("bench/e2e", max(calls, args.memory_pairs // args.scorers))
    refs = harness.publish_scorers("bench/e2e", args.scorers)
    print(f"machine: {harness.machine()}")
    print(f"workers: rundramatiq --processes {args.processes} --threads {args.threads}")
    with harness.web_server(workers=1), harness.worker_processes(args.processes, args.threads) as worker:
        time.sleep(3)  # let the worker processes boot
        http = httpx.Client(base_url=f"http://127.0.0.1:{harness.PORT}", auth=("api", key), timeout=300)
        pids = harness.children(worker.pid)
        noop_sent = noop_rate(args.pairs, pipelined=False)
        noop_consumed = noop_rate(args.pairs, pipelined=True)
        rate, pairs = scoring_rate(http, "bench/e2e", call_ids[:calls], refs)
        noop_sent_after = noop_rate(args.pairs, pipelined=False)
        noop_consumed_after = noop_rate(args.pairs, pipelined=True)
        sent = (noop_sent + noop_sent_after) / 2
        consumed = (noop_consumed + noop_consumed_after) / 2
        rss_before = sum(harness.rss_kb(pid) for pid in pids) // 1024
        print(f"no-op actor, sent one by one while consumed: {noop_sent:,.0f} before, {noop_sent_after:,.0f} after")
        print(f"no-op actor, pre-enqueued in pipelines: {noop_consumed:,.0f} before, {noop_consumed_after:,.0f} after")
        print(
            f"built-in scorers end to end: {pairs:,} pairs, {rate:,.0f} pairs/s = "
            f"{rate / sent:.2f}x the no-op sent one by one, {rate / consumed:.2f}x the pre-enqueued no-op"
        )
        if args.memory_pairs:
            memory_calls = args.memory_pairs // args.scorers
            for round_ in range(1, args.memory_rounds + 1):
                scoring_rate(http, "bench/e2e", call_ids[:memory_calls], refs)
                rss_after = sum(harness.rss_kb(pid) for pid in pids) // 1024
                growth = (rss_after - rss_before) / rss_before * 100
                print(
                    f"worker RSS (all processes): {rss_before} MB after the first {pairs:,} pairs, {rss_after} MB "
                    f"after {round_ * args.memory_pairs:,} more ({growth:+.1f}%)"
                )


if __name__ == "__main__":
    main()
