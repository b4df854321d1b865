"""Time-ordered ids (UUID version 7, RFC 9562) for rows whose order matters within an instant.

Events sort by (created_at, id). Within one process the ids grow strictly, so two events recorded
in the same clock tick (or under a test's frozen clock) keep the order they were recorded in;
across processes they follow the wall clock to the millisecond.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid

_lock = threading.Lock()
_last = 0  # the last 122-bit payload: milliseconds (48 bits), then 74 random bits


def time_ordered_uuid() -> uuid.UUID:
    global _last
    with _lock:
        payload = (time.time_ns() // 1_000_000) << 74 | secrets.randbits(74)
        if payload <= _last:
            payload = _last + 1
        _last = payload
    millis, rand_a, rand_b = payload >> 74, (payload >> 62) & 0xFFF, payload & (1 << 62) - 1
    # The version (7) and variant (0b10) bits sit at fixed places, so the order is kept.
    return uuid.UUID(int=millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)
