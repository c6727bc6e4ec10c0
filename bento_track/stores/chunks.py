"""How a durable store packs records: in chunks, one stored row (SQLite) or
stream entry (Redis) each.

One row per event would cost more in a store than everything else the
worker does for an event, so a grouped write is cut into chunks of up to a
tenth of a batch; a chunk is written, leased and deleted as a whole. A
batch takes whole chunks, so it may leave up to a chunk's worth of room
(hence a tenth: the batch stays at least nine tenths full). A chunk holds
one kind of record (`_core.kinds`), because a batch does: a batch of
whole chunks is then of one kind by construction.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._core.kinds import kind_of
from .._core.records import Record

__all__ = ["chunked", "size_of"]


def chunked(
    records: Sequence[Record], max_count: int, max_bytes: int
) -> list[list[Record]]:
    """`records` (oldest first) cut into chunks of one kind each, in order:
    at most a tenth of `max_count` records (at least one) and at most
    `max_bytes` (sum of `record_size`; a record larger alone is a chunk of
    its own)."""
    most = max(1, max_count // 10)
    chunks: list[list[Record]] = []
    chunk: list[Record] = []
    size = 0
    for record in records:
        step = len(record) + 1
        if chunk and (
            len(chunk) >= most
            or size + step > max_bytes
            or kind_of(record) is not kind_of(chunk[0])
        ):
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(record)
        size += step
    if chunk:
        chunks.append(chunk)
    return chunks


def size_of(records: Sequence[Record]) -> int:
    """What `records` add to a body: the sum of their `record_size`."""
    return sum(map(len, records)) + len(records)
