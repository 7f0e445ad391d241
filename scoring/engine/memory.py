"""Handing a worker process's freed heap memory back to the operating system.

A worker's threads allocate and free each batch's rows, messages and results over and over. glibc
keeps what they free in its per-thread arenas for reuse, and the holes that fragmentation leaves
between live blocks are returned to the system only when it is asked to. That, not a leak, is
where a long-running worker's RSS went (docs/benchmarks.md, "Soak"): over 300,000 pairs the
memory in use stayed within 0.5 MB per process while the allocator's free memory rose by 2 MB, and
one `malloc_trim(0)` gave 3 MB per process back. So the worker's housekeeping asks for it every
SCORING_WORKER_TRIM_SECONDS.
"""

import ctypes
from functools import cache


@cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to ask
        return None


def heap_trim() -> bool:
    """Return the allocator's whole free pages to the system (glibc's malloc_trim(0)); True if it
    released any. Where the C library has no such call, does nothing and returns False."""
    trim = _malloc_trim()
    if trim is None:
        return False
    return bool(trim(0))
