"""Ids of the calls and feedback the service writes."""

import time
import uuid

from scoring.weave.ids import uuid7


def test_uuid7_is_a_version_7_uuid_ordered_by_time():
    """Version 7, RFC 9562 variant, the current millisecond in front, distinct, and in time order
    across milliseconds."""
    before = time.time_ns() // 1_000_000
    first = uuid.UUID(uuid7())
    after = time.time_ns() // 1_000_000
    assert (first.version, first.variant) == (7, uuid.RFC_4122)
    assert before <= first.int >> 80 <= after
    ids = [uuid7() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    # Ids of a later millisecond sort after every id of an earlier one.
    last_ms = uuid.UUID(ids[-1]).int >> 80
    later = uuid7()
    while uuid.UUID(later).int >> 80 == last_ms:
        later = uuid7()
    assert later > max(ids)
    assert all(str(uuid.UUID(i)) == i for i in ids[:100])  # the canonical lower-case form
