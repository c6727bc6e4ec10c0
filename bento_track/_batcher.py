"""Pure batching logic: encoding events once, sizing and building request bodies,
and deciding when a batch is due. No threads, no I/O; the clock is passed in.

Each event is encoded exactly once, in the worker thread, to the same compact
UTF-8 JSON that `events.dumps(event.to_dict())` produces (a test holds them
equal); a batch body is those bytes joined, so a retry or a bisection never
re-encodes anything.
"""

from __future__ import annotations

import json
import json.encoder
import time
from collections.abc import Callable, Sequence
from typing import Any

from .events import Event

__all__ = [
    "BODY_OVERHEAD",
    "HARD_MAX_BATCH_SIZE",
    "BatchPolicy",
    "Record",
    "body",
    "decode_event",
    "encode_event",
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
#: backend stores anyway; `decode_event` rebuilds an `Event` for signals.
Record = bytes

_encode_string: Callable[[str], str] = json.encoder.encode_basestring
_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)


def _slow_encode_json(value: Any, _level: int) -> Sequence[str]:
    return [json.dumps(value, separators=(",", ":"), ensure_ascii=False)]


# The C encoder behind `json.dumps(..., separators=(",", ":"), ensure_ascii=False)`,
# built once: calling it directly skips json.dumps's per-call setup.
_encode_json: Callable[[Any, int], Sequence[str]] = (
    _make_encoder(
        None,
        json.JSONEncoder().default,
        _encode_string,
        None,
        ":",
        ",",
        False,
        False,
        True,
    )
    if _make_encoder is not None
    else _slow_encode_json
)


# `events.format_timestamp`, inlined with a per-second cache and a table of
# millisecond suffixes: it runs once per delivered event. Same arithmetic, so
# the same text (a test holds them equal).
_MILLIS = tuple(f".{i:03d}Z" for i in range(1000))
_second_cache: tuple[int, str] = (-1, "")


#: `{"type":"<type>","email":` per event type: a handful of types make most events
_heads: dict[str, str] = {}
_HEADS_CACHE = 1024


def _head(event_type: str) -> str:
    if len(_heads) >= _HEADS_CACHE:
        _heads.clear()
    head = _heads[event_type] = f'{{"type":{_encode_string(event_type)},"email":'
    return head


def encode_event(event: Event) -> bytes:
    """The event as Bento's JSON object, bytes-identical to
    `events.dumps(event.to_dict())` but without building the dict."""
    global _second_cache
    date = event.date
    if not date:
        ts = event.captured_at
        second = int(ts)
        cached = _second_cache
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            _second_cache = cached
        date = cached[1] + _MILLIS[int((ts - second) * 1000)]
    head = _heads.get(event.type) or _head(event.type)
    head = f"{head}{_encode_string(event.email)}"
    fields = event.fields
    details = event.details
    if fields:
        head = f'{head},"fields":{"".join(_encode_json(fields, 0))}'
    if details:
        head = f'{head},"details":{"".join(_encode_json(details, 0))}'
    return f'{head},"date":"{date}"}}'.encode()


def decode_event(data: bytes) -> Event:
    """An `Event` equal to the one `data` was encoded from (for signals)."""
    doc = json.loads(data)
    return Event(
        doc["type"], doc["email"], doc.get("fields"), doc.get("details"), doc["date"]
    )


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
        self, count: int, nbytes: int, oldest_at: float | None, now: float
    ) -> float | None:
        """Seconds until a batch is due (0.0: now), None if nothing waits."""
        if count == 0 or oldest_at is None:
            return None
        if self.full(count, nbytes):
            return 0.0
        return max(0.0, oldest_at + self.flush_interval - now)

    def fits(self, data: bytes) -> bool:
        """Whether one encoded event fits in a request at all."""
        return record_size(data) + BODY_OVERHEAD <= self.max_bytes
