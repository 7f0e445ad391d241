"""A worker hands the heap memory its threads freed back to the system, on its housekeeping
schedule (scoring.engine.memory)."""

import subprocess
import sys
import threading
from contextlib import contextmanager

import dramatiq
import pytest

from scoring.engine import memory
from scoring.engine.middleware import WorkerHousekeeping
from tests.conftest import ROOT

# Threads allocate blocks above pymalloc's 512 bytes and below glibc's mmap threshold, keep one in
# eight and free the rest: the holes between live blocks are whole free pages that glibc keeps.
FRAGMENT = """
import threading
from scoring.engine.memory import heap_trim

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024

kept = []
def churn():
    blocks = [bytes(64 * 1024) for _ in range(400)]
    kept.extend(blocks[::8])

threads = [threading.Thread(target=churn) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
before = rss_mb()
released = heap_trim()
print(before, rss_mb(), released, len(kept))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc are Linux's")
def test_heap_trim_returns_the_free_pages_between_live_blocks():
    out = subprocess.run([sys.executable, "-c", FRAGMENT], cwd=ROOT, capture_output=True, text=True, check=True)
    before, after, released, kept = out.stdout.split()
    assert released == "True"
    assert int(kept) == 200  # the live blocks are still there
    # 100 MB were allocated and 7/8 of it freed; glibc kept part of that (how much varies), and
    # the trim gives most of what it kept back.
    assert int(after) < 0.6 * int(before), out.stdout


@contextmanager
def _housekeeping(settings, monkeypatch, trim_seconds):
    """The housekeeping loop running in a thread, beating every 10 ms; yields a semaphore released
    at each beat, and stops the loop on leaving. The test has no database access: every step that
    needs it fails, as when the database is unreachable, and is logged."""
    from scoring.engine import broker, window

    settings.SCORING_HEARTBEAT_SECONDS = 0.01
    settings.SCORING_WORKER_TRIM_SECONDS = trim_seconds
    beats = threading.Semaphore(0)
    heartbeat = broker.heartbeat

    def counted(broker_):
        beats.release()
        return heartbeat(broker_)

    monkeypatch.setattr(broker, "heartbeat", counted)
    # The dispatch windows' refill thread would outlive the test; it is not what is tested here.
    monkeypatch.setattr(window.refiller, "poke", lambda force=False: None)
    housekeeping = WorkerHousekeeping()
    thread = threading.Thread(target=housekeeping._loop, args=(dramatiq.get_broker(),), daemon=True)
    thread.start()
    try:
        yield beats
    finally:
        housekeeping._stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_housekeeping_trims_on_its_schedule_even_when_the_database_is_unreachable(settings, monkeypatch):
    trims = threading.Semaphore(0)
    monkeypatch.setattr(memory, "heap_trim", trims.release)
    with _housekeeping(settings, monkeypatch, trim_seconds=0.03):  # every third beat
        for _ in range(3):
            assert trims.acquire(timeout=30)


def test_housekeeping_does_not_trim_when_turned_off(settings, monkeypatch):
    trims = []
    monkeypatch.setattr(memory, "heap_trim", lambda: trims.append(1))
    with _housekeeping(settings, monkeypatch, trim_seconds=0) as beats:
        for _ in range(10):
            assert beats.acquire(timeout=30)
    assert trims == []
