"""Records and batches, as stores and delivery both see them: a record's
size, a request body built from records, and when a batch is due. No
threads, no I/O; the clock is passed in.

Each event is encoded exactly once, in the worker thread, to compact UTF-8
JSON (`_delivery.encoding`); a batch body is those bytes joined, so a retry
or a bisection never re-encodes anything.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BODY_OVERHEAD",
    "HARD_MAX_BATCH_SIZE",
    "BatchPolicy",
    "Record",
    "body",
    "record_size",
]

#: Bento's documented maximum number of events in one request.
HARD_MAX_BATCH_SIZE = 1000
_PREFIX = b'{"events":['
_SUFFIX = b"]}"
#: bytes of the body that are not events (the envelope)
BODY_OVERHEAD = len(_PREFIX) + len(_SUFFIX)

#: One queued event: its encoded JSON. The `Event` object itself is not kept:
#: bytes are compact, invisible to the garbage collector, and what a durable
#: backend stores anyway; `_delivery.encoding.decode_event` rebuilds an `Event` for signals.
Record = bytes


def record_size(data: bytes) -> int:
    """What one encoded event adds to a body: itself and a separating comma."""
    return len(data) + 1


def body(datas: Sequence[bytes]) -> bytes:
    """The `/batch/events` request body for already encoded events."""
    return _PREFIX + b",".join(datas) + _SUFFIX


class BatchPolicy:
    """When a batch is due: full by count, full by bytes, or old enough.

    Args:
        max_count: events per request (1..1000).
        max_bytes: body bytes per request, envelope included.
        flush_interval: seconds the oldest waiting event may wait before a
            partial batch is sent (when a request slot is free).
    """

    def __init__(self, max_count: int, max_bytes: int, flush_interval: float) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.flush_interval = flush_interval

    def full(self, count: int, nbytes: int) -> bool:
        """Whether `count` events of `nbytes` (sum of `record_size`) fill a request."""
        return count >= self.max_count or nbytes + BODY_OVERHEAD >= self.max_bytes

    def due_in(
        self,
        count: int,
        nbytes: int,
        since: float | None,
        now: float,
        *,
        force: bool = False,
    ) -> float | None:
        """Seconds until a batch of the `count` waiting events (`nbytes`, sum
        of `record_size`) is due: 0.0 now, None if nothing waits.

        Every store's rule (the memory and SQLite stores call it; the Redis
        claim script mirrors it, and a test holds the two together): due when
        full, when `force` (a flush waits), or `flush_interval` after `since`:
        the later of the oldest waiting event's arrival and the last batch's
        departure (None: not known, so due now)."""
        if count <= 0:
            return None
        if force or since is None or self.full(count, nbytes):
            return 0.0
        return max(0.0, since + self.flush_interval - now)

    def fits(self, data: bytes) -> bool:
        """Whether one encoded event fits in a request at all."""
        return record_size(data) + BODY_OVERHEAD <= self.max_bytes
