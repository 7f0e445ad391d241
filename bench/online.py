"""Benchmark: online scoring latency, from a call's end to its feedback, with a monitor using a
built-in scorer while calls are ingested at a steady rate through gunicorn (the weave client's
`calls/complete` route, batches every 0.1 s).

    .venv/bin/python bench/online.py [--rate 1000] [--seconds 20] [--processes 2] [--threads 8]

The latency of a call is its feedback's created_at minus its ended_at, stamped by the sender just
before the batch goes out (same clock). Drops and recreates BENCH_DB; serves on BENCH_PORT.
"""

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

PROJECT = "bench/online"
TICK = 0.1


def batch(size: int) -> dict:
    now = datetime.now(UTC).isoformat()
    calls = []
    for i in range(size):
        calls.append(
            {
                "project_id": PROJECT,
                "id": str(uuid.uuid4()),
                "trace_id": str(uuid.uuid4()),
                "op_name": f"weave:///{PROJECT}/op/answer:abc",
                "started_at": now,
                "ended_at": now,
                "attributes": {},
                "inputs": {"question": f"q{i}"},
                "output": '{"answer": 4}',
                "summary": {},
            }
        )
    return {"batch": calls}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1_000, help="calls per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    harness.setup_django()
    harness.reset_database()
    harness.flush_broker()
    import httpx
    from django.db.models import F

    from scoring.models import Feedback

    key = harness.make_user_and_key("bench")
    harness.make_project(PROJECT)
    scorers = harness.publish_scorers(PROJECT, 1)
    harness.publish_monitor(PROJECT, "json-check", scorers, "answer")
    print(f"machine: {harness.machine()}")
    per_tick = max(1, int(args.rate * TICK))
    sent = 0
    with (
        harness.web_server(workers=2),
        harness.worker_processes(args.processes, args.threads),
        httpx.Client(base_url=f"http://127.0.0.1:{harness.PORT}", auth=("api", key), timeout=300) as client,
    ):
        time.sleep(3)  # the workers boot
        started = time.monotonic()
        next_tick = started
        while time.monotonic() - started < args.seconds:
            response = client.post(f"/v2/{PROJECT}/calls/complete", json=batch(per_tick))
            assert response.status_code == 200, response.text[:500]
            sent += per_tick
            next_tick += TICK
            time.sleep(max(0.0, next_tick - time.monotonic()))
        ingest_rate = sent / (time.monotonic() - started)
        deadline = time.monotonic() + 120
        while Feedback.objects.count() < sent and time.monotonic() < deadline:
            time.sleep(0.5)
    latency = Feedback.objects.annotate(d=F("created_at") - F("task__call__ended_at"))
    delays = sorted(d.total_seconds() for d in latency.values_list("d", flat=True))
    print(f"ingested {sent:,} calls at {ingest_rate:,.0f} calls/s; scored {len(delays):,}")
    print(
        f"call end -> feedback: p50 {harness.percentile(delays, 50):.3f} s  "
        f"p90 {harness.percentile(delays, 90):.3f} s  p99 {harness.percentile(delays, 99):.3f} s  "
        f"max {delays[-1]:.3f} s"
    )


if __name__ == "__main__":
    main()
