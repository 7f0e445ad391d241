"""Ids the service makes for calls, traces and feedback: UUIDv7 (RFC 9562), as Weave's own client
gives calls. The millisecond timestamp in front makes them sort by creation time and keeps inserts
at the right-hand end of the indexes they go into."""

import os
import time


def uuid7() -> str:
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 10
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
