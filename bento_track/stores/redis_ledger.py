"""The chunks a Redis store's process holds, and which of their events each
of its leases carries.

Redis settles whole chunks (stream entries), but the worker settles leases,
and a rejected batch is bisected: its halves may cut a chunk and be settled
apart. So the process keeps a ledger: each chunk it claimed gets a handle
(a lease's `ids` are handles, one per event) and a count of its events not
settled yet. A chunk is deleted from Redis once all of its events are
settled; a half put back is written again as a new chunk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .._core.records import Record
from .base import Lease
from .redis_calls import ClaimedChunk

__all__ = ["ChunkLedger", "HeldChunk", "PartBack"]


@dataclass
class HeldChunk:
    """A chunk this process holds: its stream id, the process that put it,
    its events, and how many of them are not settled yet."""

    sid: str
    origin: str
    count: int
    left: int


@dataclass(frozen=True)
class PartBack:
    """Part of a held chunk going back (a bisection half): its records, to
    write as a new waiting chunk under the chunk's `origin`, and the chunk's
    id to delete once nothing of it stays held ('' while part of it does)."""

    records: list[Record]
    origin: str
    old: str


class ChunkLedger:
    """This process's held chunks (see the module docstring)."""

    def __init__(self) -> None:
        self._chunks: dict[int, HeldChunk] = {}
        self._handles = 0
        self._tokens = 0

    def lease(self, chunks: Sequence[ClaimedChunk]) -> Lease:
        """A lease on the claimed `chunks`, their events in order."""
        records: list[Record] = []
        ids: list[int] = []
        for chunk in chunks:
            self._handles += 1
            n = len(chunk.records)
            self._chunks[self._handles] = HeldChunk(chunk.sid, chunk.origin, n, n)
            records += chunk.records
            ids += [self._handles] * n
        self._tokens += 1
        return Lease(self._tokens, records, ids, [0] * len(records))

    def sids(self, lease: Lease) -> list[str]:
        """The held chunks `lease` carries events of."""
        return [
            self._chunks[h].sid for h in dict.fromkeys(lease.ids) if h in self._chunks
        ]

    def settle(self, lease: Lease) -> list[str]:
        """`lease`'s events are settled: the chunks now settled whole (to
        delete). A chunk split by a bisection is done once both halves are."""
        done: list[str] = []
        for handle, n in Counter(lease.ids).items():
            chunk = self._chunks.get(handle)
            if chunk is None:
                continue
            chunk.left -= n
            if chunk.left <= 0:
                del self._chunks[handle]
                done.append(chunk.sid)
        return done

    def release(self, lease: Lease) -> tuple[list[str], list[PartBack]]:
        """`lease`'s events go back: (chunks going back whole, to release in
        Redis; parts of chunks, to write again)."""
        whole: list[str] = []
        parts: list[PartBack] = []
        mine: dict[int, list[Record]] = {}
        for handle, record in zip(lease.ids, lease.records, strict=True):
            mine.setdefault(handle, []).append(record)
        for handle, records in mine.items():
            chunk = self._chunks.get(handle)
            if chunk is None:
                continue
            if len(records) == chunk.left == chunk.count:
                del self._chunks[handle]
                whole.append(chunk.sid)
                continue
            chunk.left -= len(records)
            old = ""
            if chunk.left <= 0:
                del self._chunks[handle]
                old = chunk.sid
            parts.append(PartBack(records, chunk.origin, old))
        return whole, parts
