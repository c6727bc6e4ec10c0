"""Encoding an event once into its record, and back (for signals)."""

from __future__ import annotations

import orjson

from .._core.kinds import Kind, kind_of
from .._core.records import Record
from ..events import Event

__all__ = ["decode_event", "decode_events", "encode_event"]


def encode_event(event: Event) -> bytes:
    """The event as Bento's JSON object, compact UTF-8 (`dumps(event.to_dict())`).

    Raises:
        TypeError: the event holds what JSON cannot (only an event built
            without validation can: the worker drops it as `unencodable`).
    """
    return orjson.dumps(event.to_dict())


def decode_event(data: bytes) -> Event:
    """An `Event` equal to the one `data` was encoded from (for signals)."""
    doc = orjson.loads(data)
    return Event(
        doc["type"], doc["email"], doc.get("fields"), doc.get("details"), doc["date"]
    )


def decode_events(records: list[Record]) -> list[Event]:
    """The events among `records`, for signals (subscriber updates carry none)."""
    return [decode_event(r) for r in records if kind_of(r) is Kind.EVENT]
