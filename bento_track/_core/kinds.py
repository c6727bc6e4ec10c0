"""What a queued record is, and how a batch of one kind becomes a request.

Events, subscriber upserts and subscriber commands share one queue (and so
one store, budget, retry and bisection path). A record's first byte tells
them apart: an event is its JSON object (`{`), an upsert or a command a mark
byte before its JSON (`subscribers`). A batch holds one kind only (`run`):
the queue's order is kept, so a command is sent before the upserts queued
after it.

Upserts of one email in a batch become one `/batch/subscribers` row: later
fields win, and tags are added and removed in the order they were asked
(`merge_upserts`). A user saved five times in a second costs one row.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

#: the first byte of a queued subscriber upsert (`subscribers.SubscriberUpsert`)
UPSERT_MARK = b"S"
#: the first byte of a queued subscriber command (`subscribers.SubscriberCommand`)
COMMAND_MARK = b"C"

__all__ = [
    "COMMAND_MARK",
    "KINDS",
    "UPSERT_MARK",
    "Kind",
    "KindSpec",
    "body",
    "kind_of",
    "merge_upserts",
    "run",
]


class Kind(enum.Enum):
    """What a record holds."""

    EVENT = "event"
    UPSERT = "upsert"
    COMMAND = "command"


@dataclass(frozen=True)
class KindSpec:
    """Where a kind's batch goes and how much one request may carry.

    Attributes:
        path: the API path.
        prefix / suffix: the body's envelope around the joined items.
        max_count: Bento's most items per request.
    """

    path: str
    prefix: bytes
    suffix: bytes
    max_count: int


KINDS: dict[Kind, KindSpec] = {
    Kind.EVENT: KindSpec("/batch/events", b'{"events":[', b"]}", 1000),
    Kind.UPSERT: KindSpec("/batch/subscribers", b'{"subscribers":[', b"]}", 1000),
    # "MAX 100 commands per call" (bento-api.md, 2.5)
    Kind.COMMAND: KindSpec("/fetch/commands", b'{"command":[', b"]}", 100),
}

_BY_MARK = {UPSERT_MARK[0]: Kind.UPSERT, COMMAND_MARK[0]: Kind.COMMAND}


def kind_of(record: bytes) -> Kind:
    """The kind of a queued record, by its first byte."""
    return _BY_MARK.get(record[0], Kind.EVENT) if record else Kind.EVENT


def run(records: Sequence[bytes], max_count: int) -> int:
    """How many records from the head make one batch: those of the first
    record's kind, up to the kind's and `max_count`'s limit."""
    if not records:
        return 0
    first = records[0][0]
    if first == b"{"[0]:  # events only: the common case, and a fast one
        marks = _BY_MARK
        limit = min(max_count, len(records))
        for i in range(1, limit):
            if records[i][0] in marks:
                return i
        return limit
    limit = min(max_count, KINDS[_BY_MARK[first]].max_count, len(records))
    for i in range(1, limit):
        if records[i][0] != first:
            return i
    return limit


def merge_upserts(records: Sequence[bytes]) -> list[dict[str, Any]]:
    """Bento's `/batch/subscribers` rows for upsert records, one per email
    (the first one's position), later fields winning and tags applied in
    order."""
    merged: dict[str, tuple[dict[str, Any], dict[str, bool]]] = {}
    for record in records:
        doc = orjson.loads(record[1:])
        key = doc["email"].lower()
        fields, tags = merged.setdefault(key, ({"email": doc["email"]}, {}))
        fields.update(doc.get("fields") or ())
        for tag in doc.get("tags", ()):
            tags.pop(tag, None)
            tags[tag] = True
        for tag in doc.get("remove_tags", ()):
            tags.pop(tag, None)
            tags[tag] = False
    rows = []
    for fields, tags in merged.values():
        row = dict(fields)
        added = [t for t, on in tags.items() if on]
        removed = [t for t, on in tags.items() if not on]
        if added:
            row["tags"] = ",".join(added)
        if removed:
            row["remove_tags"] = ",".join(removed)
        rows.append(row)
    return rows


def body(records: Sequence[bytes]) -> tuple[Kind, bytes, int]:
    """(kind, request body, items in it) for a batch of one kind; upserts of
    one email are merged into one row."""
    kind = kind_of(records[0])
    spec = KINDS[kind]
    if kind is Kind.EVENT:
        return kind, spec.prefix + b",".join(records) + spec.suffix, len(records)
    if kind is Kind.COMMAND:
        items = b",".join(r[1:] for r in records)
        return kind, spec.prefix + items + spec.suffix, len(records)
    rows = merge_upserts(records)
    return kind, orjson.dumps({"subscribers": rows}), len(rows)
