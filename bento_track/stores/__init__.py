"""Queue backends and stores: where encoded events wait for delivery.

The worker talks to a `Store` (see `base`): `MemoryStore` in front of a
`QueueBackend` (the default), or `SQLiteStore`, a file every process on the
host shares (`Client(store="sqlite:////path/bento.db")`). What follows is
about backends, the memory store's storage.

Capture never touches a backend: `track()` appends the `Event` to a small
in-memory inbox, and the worker thread encodes events and moves them into the
backend. So a backend may do I/O (a SQLite spool, Redis) without ever slowing
the host's request threads, and a new backend slots in without touching
capture code: pass it as `Client(queue=...)`.

A backend is used from one thread at a time (the client's worker, or the
caller under the client's send lock in sync mode); it needs no locking of its
own. Records are the encoded JSON of one event (`bytes`), oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from .._core.records import Record
from .account import UNNAMED, Account
from .base import AccountStats, Claim, Lease, Permit, Store, StorePolicy, StoreStats
from .memory import MemoryQueue, MemoryStore
from .sqlite import DEFAULT_MAX_STORE_BYTES, SQLiteStore, StoreError

__all__ = [
    "DEFAULT_MAX_STORE_BYTES",
    "UNNAMED",
    "Account",
    "AccountStats",
    "Claim",
    "Lease",
    "MemoryQueue",
    "MemoryStore",
    "Permit",
    "QueueBackend",
    "Record",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StorePolicy",
    "StoreStats",
]


@runtime_checkable
class QueueBackend(Protocol):
    """Storage of encoded events awaiting delivery (FIFO)."""

    def put(self, records: Iterable[Record]) -> None:
        """Append records at the tail."""
        ...

    def requeue(self, records: list[Record]) -> None:
        """Put records back at the head, in order (a batch that will be retried)."""
        ...

    def get_batch(self, max_count: int, max_bytes: int) -> list[Record]:
        """Remove and return up to `max_count` records from the head whose sizes
        (`record_size`) sum to at most `max_bytes` (always at least one record
        when not empty)."""
        ...

    def drop_oldest(self, count: int) -> list[Record]:
        """Remove and return up to `count` records from the head."""
        ...

    def drop_newest(self, count: int) -> list[Record]:
        """Remove and return up to `count` records from the tail."""
        ...

    @property
    def nbytes(self) -> int:
        """Sum of `record_size` of the records held."""
        ...

    def __len__(self) -> int: ...

    def clear(self) -> None:
        """Forget every record."""
        ...

    def after_fork(self) -> None:
        """Called in a forked child: the memory backend forgets the parent's
        events (the parent delivers them); a durable one reopens its handles."""
        ...
