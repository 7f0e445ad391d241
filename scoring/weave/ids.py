"""Ids: UUIDv7 (RFC 9562) for the calls, traces and feedback the service makes, as Weave's own
client gives calls (the millisecond timestamp in front sorts them by creation time and keeps inserts
at the right-hand end of their indexes), and users' ids as W&B spells them."""

import base64
import os
import time


def uuid7() -> str:
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 10
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def wb_user_id_for(user) -> str:
    """The user's id as W&B spells it (base64 of `User:<pk>`), the value stored in wb_user_id."""
    return base64.b64encode(f"User:{user.pk}".encode()).decode()
