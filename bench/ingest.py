"""Benchmark 5, ingestion through gunicorn: batches of 1,000 finished calls shaped as weave 0.54
sends them (captured), p50/p95 per batch and calls per second, with one client and with two at
once (each new batch is new calls; a second pass re-sends them, as a client retry does). Routes:
`POST /v2/<entity>/<project>/calls/complete` (the weave client's batch route: it drops a batch
this route fails, so its speed bounds how much a traced program can log) and
`POST /call/upsert_batch` (each call as a start and an end item).

    .venv/bin/python bench/ingest.py [--route complete|upsert_batch] [--batches 20] [--size 1000] [--monitors 3]

With `--monitors N` the project has N active monitors on its op (no worker runs: what is measured
is the cost on the request path, an outbox row per ended call).

Like every benchmark here it drops and recreates its database (BENCH_DB, default scoring_bench)
and serves on BENCH_PORT: give it its own while another benchmark runs.
"""

import argparse
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

PROJECT = "bench/complete"
ATTRIBUTES = {
    "weave": {
        "python": {"type": "function"},
        "client_version": "0.54.0",
        "source": "python-sdk",
        "sys_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
        "os_name": "Linux",
        "os_version": "#1 SMP PREEMPT_DYNAMIC @0",
        "os_release": "6.18.44-fc-v782",
    }
}


def call(index: int, trace_id: str, parent_id: str | None) -> dict:
    return {
        "project_id": PROJECT,
        "id": str(uuid.uuid4()),
        "trace_id": trace_id,
        "op_name": "weave:///bench/complete/op/answer:uUIV6oW81xzKAQCFgcI81YemxMBDEj3bfTXcZYomXYU",
        "started_at": "2026-11-26T17:18:20.882955Z",
        "ended_at": "2026-11-26T17:18:20.883659Z",
        "display_name": None,
        "parent_id": parent_id,
        "thread_id": None,
        "turn_id": None,
        "attributes": ATTRIBUTES,
        "inputs": {"question": f"what is {index}+{index}?", "context": "lorem ipsum " * 20},
        "output": '{"answer": "' + str(2 * index) + '"}',
        "summary": {"status_counts": {"success": 1, "error": 0}},
        "otel_dump": None,
        "exception": None,
        "wb_user_id": None,
        "wb_run_id": None,
        "wb_run_step": None,
        "wb_run_step_end": None,
    }


def batch(size: int) -> dict:
    """`size` calls in traces of ten: a root and nine children, children first (as they finish)."""
    calls = []
    for start in range(0, size, 10):
        trace_id, root_id = str(uuid.uuid4()), None
        root = call(start, trace_id, None)
        root_id = root["id"]
        calls.extend(call(start + i, trace_id, root_id) for i in range(1, min(10, size - start)))
        calls.append(root)
    return {"batch": calls}


END_FIELDS = {"project_id", "id", "trace_id", "ended_at", "output", "summary", "exception", "wb_run_step_end"}


def as_upsert_batch(body: dict) -> dict:
    """The same calls for /call/upsert_batch: a start and an end item each."""
    items = []
    for call_ in body["batch"]:
        start = {k: v for k, v in call_.items() if k not in END_FIELDS - {"project_id", "id", "trace_id"}}
        end = {k: v for k, v in call_.items() if k in END_FIELDS}
        items += [{"mode": "start", "req": {"start": start}}, {"mode": "end", "req": {"end": end}}]
    return {"batch": items}


ROUTES = {
    "complete": (f"/v2/{PROJECT}/calls/complete", lambda body: body),
    "upsert_batch": ("/call/upsert_batch", as_upsert_batch),
}


def run(client, bodies: list[dict], clients: int, route: str) -> tuple[list[float], float]:
    path, shape = ROUTES[route]
    bodies = [shape(body) for body in bodies]

    def send(body):
        started = time.perf_counter()
        response = client.post(path, json=body)
        assert response.status_code == 200, response.text[:500]
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        timings = list(pool.map(send, bodies))
    return timings, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--size", type=int, default=1_000)
    parser.add_argument("--route", choices=sorted(ROUTES), default="complete")
    parser.add_argument("--monitors", type=int, default=0, help="active monitors on the project's op")
    args = parser.parse_args()

    harness.setup_django()
    harness.reset_database()
    import httpx

    from scoring.models import Call

    key = harness.make_user_and_key("bench")
    if args.monitors:
        refs = harness.publish_scorers(PROJECT, 1) if harness.make_project(PROJECT) else []
        for k in range(args.monitors):
            harness.publish_monitor(PROJECT, f"monitor-{k}", refs, "answer")
    print(f"machine: {harness.machine()}")
    print(f"active monitors: {args.monitors}")
    print(f"route: {ROUTES[args.route][0]}")
    with (
        harness.web_server(workers=2),
        httpx.Client(base_url=f"http://127.0.0.1:{harness.PORT}", auth=("api", key), timeout=300) as client,
    ):
        for clients in (1, 2):
            bodies = [batch(args.size) for _ in range(args.batches)]
            for label, sent in (("new calls", bodies), ("re-sent", bodies)):
                timings, wall = run(client, sent, clients, args.route)
                calls = args.batches * args.size
                print(
                    f"{clients} client(s), {args.batches} x {args.size} {label}: "
                    f"p50 {harness.percentile(timings, 50) * 1000:7.1f} ms  "
                    f"p95 {harness.percentile(timings, 95) * 1000:7.1f} ms  "
                    f"{calls / wall:8,.0f} calls/s"
                )
    print(f"calls stored: {Call.objects.count():,}")


if __name__ == "__main__":
    main()
