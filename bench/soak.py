"""Soak: 1,000,000 pairs with built-in scorers through two worker processes, ten jobs of a tenth
each in a row, with vacuum running; worker RSS and the rate of the last tenth against the first.

    .venv/bin/python bench/soak.py [--pairs 1000000] [--tenths 10] [--processes 2] [--threads 32] [--vacuum auto]
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from throughput import scoring_rate  # noqa: E402


def table_stats() -> dict:
    """PostgreSQL's own counters for the task table: its size, dead rows and (auto)vacuums."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_live_tup, n_dead_tup, vacuum_count + autovacuum_count, analyze_count + autoanalyze_count, "
            "pg_total_relation_size(relid) FROM pg_stat_user_tables WHERE relname = 'scoring_scoringtask'"
        )
        live, dead, vacuums, analyzes, size = cursor.fetchone()
    return {"live": live, "dead": dead, "vacuums": vacuums, "analyzes": analyzes, "mb": size // 1024 // 1024}


class StandInAutovacuum(threading.Thread):
    """Where the server's autovacuum is off, do what it would: VACUUM (ANALYZE) a table of the hot
    path once its dead rows pass autovacuum's default threshold (50 + 20 % of its live rows),
    throttled as autovacuum is (vacuum_cost_delay 2 ms), so that the soak measures the rate with
    vacuum running."""

    TABLES = ("scoring_scoringtask", "scoring_call", "scoring_feedback")

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.runs: list[str] = []

    def run(self):
        import psycopg

        with psycopg.connect(harness.DATABASE_URL, autocommit=True) as conn:
            conn.execute("SET vacuum_cost_delay = 2")
            while not self.stop.wait(10):
                for table in self.TABLES:
                    live, dead = conn.execute(
                        "SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", [table]
                    ).fetchone()
                    if dead > 50 + 0.2 * live:
                        started = time.monotonic()
                        conn.execute(f"VACUUM (ANALYZE) {table}")
                        self.runs.append(f"{table} ({dead:,} dead, {time.monotonic() - started:.0f} s)")


class RssSampler(threading.Thread):
    """The worker processes' summed RSS once a second. A single reading says little: glibc grows
    and trims the top of each process's heap by several MB from one batch to the next, so each
    tenth is summarised by the median of its readings."""

    def __init__(self, parent_pid: int):
        super().__init__(daemon=True)
        self.parent_pid = parent_pid
        self.stop = threading.Event()
        self.readings: list[int] = []

    def run(self):
        while not self.stop.wait(1):
            # Read each time: the worker processes are forked after boot, and one may be restarted.
            pids = harness.children(self.parent_pid)
            if pids:
                self.readings.append(sum(harness.rss_kb(pid) for pid in pids) // 1024)

    def take(self) -> list[int]:
        readings, self.readings = self.readings, []
        return readings or [0]


def autovacuum_on() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        return cursor.fetchone()[0] == "on"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--tenths", type=int, default=10, help="jobs the pairs are split into, one after another")
    parser.add_argument("--scorers", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument(
        "--vacuum",
        choices=["auto", "on", "off"],
        default="auto",
        help="stand-in autovacuum (auto: if the server's is off)",
    )
    args = parser.parse_args()

    harness.setup_django()
    harness.reset_database()
    harness.flush_broker()
    import httpx

    per_job = args.pairs // args.tenths
    calls = per_job // args.scorers
    key = harness.make_user_and_key("bench")
    call_ids = harness.load_calls("bench/soak", calls)
    refs = harness.publish_scorers("bench/soak", args.scorers)
    print(f"machine: {harness.machine()}")
    print(f"workers: rundramatiq --processes {args.processes} --threads {args.threads}")
    print(f"{args.tenths} jobs of {per_job:,} pairs, one after another")
    vacuum = None
    if args.vacuum == "on" or (args.vacuum == "auto" and not autovacuum_on()):
        print("the server's autovacuum is off: a stand-in vacuums the hot tables at autovacuum's thresholds")
        vacuum = StandInAutovacuum()
        vacuum.start()
    harness.ENV["SCORING_METRICS_TOKEN"] = "soak"  # each tenth also times a scrape of /metrics
    with harness.web_server(workers=1), harness.worker_processes(args.processes, args.threads) as worker:
        time.sleep(3)  # let the worker processes boot
        http = httpx.Client(base_url=f"http://127.0.0.1:{harness.PORT}", auth=("api", key), timeout=300)
        started = time.monotonic()
        rates, rss = [], []
        sampler = RssSampler(worker.pid)
        sampler.start()
        for tenth in range(1, args.tenths + 1):
            rate, pairs = scoring_rate(http, "bench/soak", call_ids, refs)
            rates.append(rate)
            readings = sampler.take()
            rss.append(statistics.median(readings))
            stats = table_stats()
            scrape_started = time.monotonic()
            scraped = httpx.get(
                f"http://127.0.0.1:{harness.PORT}/metrics", headers={"Authorization": "Bearer soak"}, timeout=60
            )
            scrape_ms = (time.monotonic() - scrape_started) * 1000
            assert scraped.status_code == 200, scraped.text[:300]
            print(
                f"tenth {tenth:2}: {pairs:,} pairs, {rate:,.0f} pairs/s; worker RSS median {rss[-1]:.0f} MB "
                f"({min(readings)}-{max(readings)}); task table "
                f"{stats['live']:,} live, {stats['dead']:,} dead rows, {stats['mb']:,} MB, vacuums {stats['vacuums']}, "
                f"analyzes {stats['analyzes']}; /metrics {scrape_ms:.0f} ms; load {os.getloadavg()[0]:.1f}; "
                f"{time.monotonic() - started:,.0f} s in",
                flush=True,
            )
    if vacuum is not None:
        vacuum.stop.set()
        print(f"vacuums: {'; '.join(vacuum.runs) or 'none'}")
    growth = (rss[-1] - rss[0]) / rss[0] * 100
    drift = (rates[-1] - rates[0]) / rates[0] * 100
    print(
        f"worker RSS (median of a tenth's readings): {rss[0]:.0f} MB in the first tenth, {rss[-1]:.0f} MB in the last "
        f"({growth:+.1f}%)"
    )
    if len(rss) > 2:
        # The first tenth is the warm-up: the processes boot, connect, fill their caches and grow
        # their heaps to a working size.
        settled = (rss[-1] - rss[1]) / rss[1] * 100
        print(f"after the warm-up (the second tenth against the last): {settled:+.1f}%; target <= +5%")
    print(f"rate: first tenth {rates[0]:,.0f}, last tenth {rates[-1]:,.0f} pairs/s ({drift:+.1f}%; target within 10%)")
    print(f"total: {args.pairs:,} pairs in {time.monotonic() - started:,.0f} s")


if __name__ == "__main__":
    main()
