"""The inbox's way into the store: take what capture threads appended,
encode each event once (dropping what cannot be sent), put the records into
the store, and keep what a durable store refused in memory until it takes
them (the spill).

With a durable store the inbox moves at most every `GROUP_INTERVAL` seconds,
so captured events reach the store in grouped commits."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from .._core.records import BODY_OVERHEAD, Record
from ..events import Event
from ..subscribers import SubscriberCommand, SubscriberUpsert, Update
from .encoding import decode_events, encode_event

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ["GROUP_INTERVAL", "NEVER", "UPDATES", "Intake", "Queued"]

#: what the inbox holds besides events: encoded by their own `encode()`
UPDATES = (SubscriberUpsert, SubscriberCommand)
#: what the inbox holds
Queued = Event | Update

#: a `wake_at` no inbox reaches: capture threads need not wake the worker
NEVER = sys.maxsize
#: real seconds between two moves of the inbox into a durable store: one
#: commit per group of events, and no event waits in memory much longer
GROUP_INTERVAL = 0.05


class Intake:
    """Moves one worker's inbox into its store (worker thread only, or
    whoever holds the worker's `sync_lock`)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        #: encoded events a durable store could not take yet (oldest first)
        self.spill: list[Record] = []
        self._last_drain = float("-inf")  # real time (time.monotonic)
        self._lock = threading.Lock()

    def drain(self, force: bool = False) -> None:
        """Move the inbox into the store, encoding each event once. With a
        durable store, at most once per `GROUP_INTERVAL` (unless `force`):
        the first event after a quiet spell waits that long for company, so
        the store takes one commit per group rather than per event."""
        worker = self.worker
        inbox = worker.inbox
        if not inbox and not self.spill:
            return
        if worker.durable and not force:
            # Real time, not the injected clock: this groups writes, it
            # decides nothing a test would steer.
            wait = self._last_drain + GROUP_INTERVAL - time.monotonic()
            if wait > 0 and len(inbox) < worker.settings.max_batch_size:
                worker.wake_at = NEVER
                worker.wake.clear()
                if not worker.stopping:
                    worker.wake.wait(wait)
        with self._lock:
            self._last_drain = time.monotonic()
            self._drain_now()

    def _drain_now(self) -> None:
        worker = self.worker
        inbox = worker.inbox
        n = len(inbox)
        records: list[Record] = self.spill
        self.spill = []
        if n:
            # Pop and count under the lock so `enqueued()` (read under it by
            # `flush`) never misses events between the inbox and the store.
            popleft = inbox.popleft
            with worker.progress:
                try:
                    events = [popleft() for _ in range(n)]
                except IndexError:  # a drop_oldest capture evicted some meanwhile
                    events = []
                    while inbox:
                        try:
                            events.append(popleft())
                        except IndexError:
                            break
                worker.drained += len(events)
                if worker.durable:
                    # In flight between the inbox and the store: still held.
                    worker.held += len(events)
            records = records + self.encode(events)
        if not records:
            worker.update_held()
            return
        try:
            dropped = worker.store.put(records)
        except Exception as exc:
            self._store_failed(records, exc)
            return
        worker.ledger.put_total += len(records)
        if dropped:
            # They were put, and left the store: `refresh` settles them,
            # after the drop was said.
            worker.drop(
                decode_events(dropped), "queue_full", count=len(dropped), queued=False
            )
        worker.update_held()
        worker.ledger.refresh()

    def encode(self, events: list[Queued]) -> list[Record]:
        """The records of `events`; an event that cannot be encoded, or is
        too large for a request alone, is dropped instead."""
        limit = self.worker.policy.max_bytes - BODY_OVERHEAD - 1  # one event alone
        # The common case in C-level loops; any failure or oversize event
        # sends the whole group through the loop below, one event at a time.
        try:
            # A subscriber update has no `to_dict`: its group takes the loop.
            records = [encode_event(event) for event in events]  # type: ignore[arg-type]
        except Exception:
            pass
        else:
            if not records or max(map(len, records)) <= limit:
                return records
        records = []
        append = records.append
        for event in events:
            if not isinstance(event, Event):  # a subscriber upsert or command
                append(event.encode())
                continue
            try:
                data = encode_event(event)
            except Exception as exc:  # validation let it through: it goes alone
                self._drop_encoding(event, "unencodable", error=exc)
                continue
            if len(data) <= limit:
                append(data)
            else:
                self._drop_encoding(
                    event,
                    "oversize",
                    message=f"{event.type!r} is {len(data)} bytes encoded; a "
                    f"request holds at most {limit}",
                )
        return records

    def _drop_encoding(
        self,
        event: Event,
        reason: str,
        error: Exception | None = None,
        message: str | None = None,
    ) -> None:
        worker = self.worker
        if worker.durable:
            with worker.progress:
                worker.held -= 1
        worker.drop([event], reason, queued=True, error=error, message=message)

    def _store_failed(self, records: list[Record], exc: Exception) -> None:
        """A durable store refused a write (disk full, locked too long, ...):
        keep the records in memory, bounded like the inbox, and try again at
        the next drain. Counted and logged."""
        worker = self.worker
        worker.counts.store_errors += 1
        worker.counts.error(f"store: {exc}", worker.clock.time())
        worker.drops.log.warn(
            "store_error",
            len(records),
            "could not write to the store %s (%s); %d events wait in memory "
            "and are written again shortly",
            worker.store.location,
            exc,
            len(records),
        )
        limit = worker.settings.max_queue_size
        if len(records) > limit:
            if worker.settings.overflow == "drop_oldest":
                over, records = records[:-limit], records[-limit:]
            else:
                records, over = records[:limit], records[limit:]
            with worker.progress:
                worker.held -= len(over)
            worker.drop(decode_events(over), "queue_full", count=len(over), queued=True)
        self.spill = records
        worker.update_held()
