"""Benchmark 6, the calls page: a project with 1,000,000 calls (two ops, a trace each, spread over
30 days) and 2 scorers (2,000,000 scores, one in ten failing), bulk-loaded with COPY; then the time
of `GET /<entity>/<project>/weave` through gunicorn, signed in, for the first page, a deep keyset
page, each filter (op, time range, failed score) and a call's page. p50/p95 of --runs requests each.

    .venv/bin/python bench/ui.py [--calls 1000000] [--runs 30] [--keep]

--keep reuses a database loaded by an earlier run (same --calls). Drops and recreates BENCH_DB
(default scoring_bench) otherwise, and serves on BENCH_PORT.
"""

import argparse
import json
import re
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

PROJECT = "bench/ui"
OPS = ("answer", "chat")
SCORERS = ("ValidJSONScorer", "StringMatchScorer")
START = datetime(2026, 11, 1, tzinfo=UTC)


def load(count: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from scoring.models import Project
    from scoring.services.objects import object_store

    project, _ = Project.objects.get_or_create(entity="bench", name="ui")
    user, _ = get_user_model().objects.get_or_create(username="bench")
    user.set_password("bench-password")
    user.save()
    op_refs = []
    for op in OPS:
        val = {"_type": "CustomWeaveType", "weave_type": {"type": "Op"}, "files": {}, "name": op}
        obj = object_store(project=project, object_id=op, val=val)
        op_refs.append(f"weave:///{PROJECT}/op/{op}:{obj.digest}")
    for name in SCORERS:
        val = {"_type": name, "_class_name": name, "_bases": ["Scorer", "Object", "BaseModel"], "column_map": None}
        object_store(project=project, object_id=name, val=val)
    step = timedelta(days=30) / count
    began = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            "COPY scoring_call (project_id, call_id, op_name, trace_id, started_at, ended_at, attributes, inputs, "
            "output, summary) FROM STDIN"
        ) as copy:
            for i in range(count):
                started = START + step * i
                copy.write_row(
                    (
                        project.pk,
                        f"c{i:07d}",
                        op_refs[i % 2],
                        f"t{i:07d}",
                        started,
                        started + timedelta(milliseconds=40 + i % 300),
                        "{}",
                        json.dumps({"question": f"what is {i}+{i}?"}),
                        json.dumps(f'{{"answer": {2 * i}}}'),
                        "{}",
                    )
                )
        calls_s = time.perf_counter() - began
        began = time.perf_counter()
        with cursor.cursor.copy(
            "COPY scoring_feedback (id, project_id, weave_ref, feedback_type, payload, wb_user_id, created_at) "
            "FROM STDIN"
        ) as copy:
            for i in range(count):
                ref = f"weave:///{PROJECT}/call/c{i:07d}"
                created = START + step * i + timedelta(seconds=1)
                failed = i % 10 == 3
                for name, field in zip(SCORERS, ("json_valid", "string_in_input"), strict=True):
                    payload = json.dumps({"output": {field: not failed}})
                    copy.write_row((uuid.uuid4(), project.pk, ref, f"wandb.runnable.{name}", payload, "bench", created))
        feedback_s = time.perf_counter() - began
        cursor.execute("ANALYZE scoring_call")
        cursor.execute("ANALYZE scoring_feedback")
    print(
        f"loaded {count:,} calls in {calls_s:.1f} s and {2 * count:,} scores in {feedback_s:.1f} s (COPY, indexes on)"
    )


def signed_in_client(base: str):
    import httpx

    client = httpx.Client(base_url=base, timeout=60)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = client.post(
        "/accounts/login/", data={"username": "bench", "password": "bench-password", "csrfmiddlewaretoken": token}
    )
    assert done.status_code == 302, done.status_code
    return client


def timed(client, url: str, runs: int) -> tuple[float, float, int]:
    client.get(url)  # warm: the first request of a gunicorn worker imports the templates
    times, rows = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200, (url, response.status_code)
        rows = response.text.count('name="call_ids"')
    return harness.percentile(times, 50), harness.percentile(times, 95), rows


def deep_page_url(client, pages: int) -> str:
    url = "/bench/ui/weave"
    for _ in range(pages):
        found = re.search(r'href="\?([^"]+)" id="next-page"', client.get(url).text)
        url = "/bench/ui/weave?" + found.group(1).replace("&amp;", "&")
    return url


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="reuse the loaded database")
    args = parser.parse_args()
    if not args.keep:
        harness.reset_database()
    harness.setup_django()
    if not args.keep:
        load(args.calls)
    print(harness.machine())
    middle = (START + timedelta(days=12)).strftime("%Y-%m-%dT%H:%M")
    end = (START + timedelta(days=13)).strftime("%Y-%m-%dT%H:%M")
    with harness.web_server(workers=2):
        client = signed_in_client(f"http://127.0.0.1:{harness.PORT}")
        cases = [
            ("first page, newest first", "/bench/ui/weave"),
            ("page 21 (keyset)", deep_page_url(client, 20)),
            ("op = chat", "/bench/ui/weave?op=chat"),
            ("started within one day", f"/bench/ui/weave?started_from={middle}&started_to={end}"),
            ("ValidJSONScorer json_valid is false", "/bench/ui/weave?scorer=ValidJSONScorer&value=false"),
            ("op = chat and json_valid is false", "/bench/ui/weave?op=chat&scorer=ValidJSONScorer&value=false"),
            ("a call's page", f"/bench/ui/r/call/c{args.calls - 7:07d}"),
        ]
        for label, url in cases:
            p50, p95, rows = timed(client, url, args.runs)
            print(f"{label:40s} p50 {p50 * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms  ({rows} rows)")


if __name__ == "__main__":
    main()
