"""The settlement ledger: how many of the events this process enqueued are
done with (delivered by any process, rejected or dropped), which is what
`flush()` waits for, and what is left in a durable store at exit.

With a durable store other processes deliver our events too, so `settled` is
recomputed from the store (`refresh`) rather than counted as answers come."""

from __future__ import annotations

import threading

from .._internal import logger
from ..stores import Store
from .stats import Counters

__all__ = ["Ledger"]


class Ledger:
    """Settlement counts of one worker. Read and written under `progress`
    (capture threads settle the drops of events never stored)."""

    def __init__(
        self, store: Store, counts: Counters, progress: threading.Condition
    ) -> None:
        self.store = store
        self.counts = counts
        self.progress = progress
        #: events enqueued here that are done with: delivered (by any
        #: process), rejected or dropped. Recomputed from the store;
        #: capture threads add drops of events never stored.
        self.settled = 0
        #: the part of `settled` that never reached the store
        self.settled_local = 0
        #: records put into the store
        self.put_total = 0
        #: this process's events still in the store (as last read)
        self.outstanding = 0
        #: this process's events the store lost (a deleted SQLite file)
        self.store_lost = 0
        #: what a `flush()` waits for: `settled` reaching it
        self.flush_target = 0
        #: events left in a durable store when the worker stopped
        self.left_in_store: int | None = None
        #: of the rest, events written without an answer (may still arrive)
        self.left_unanswered = 0

    def settle_local(self, n: int) -> None:
        """`n` enqueued events were dropped before reaching the store."""
        with self.progress:
            self.settled_local += n
            self.settled += n
            self.progress.notify_all()

    def refresh(self) -> None:
        """Recompute `settled` from the store: this process's events that
        left it (delivered or dropped by any process) are settled."""
        try:
            out = self.store.outstanding()
            lost = self.store.lost()
        except Exception as exc:
            self.counts.last_error = f"store: {exc}"
            return
        with self.progress:
            if lost > self.store_lost:
                # Settled below (they left the store), but lost, not sent:
                # the store said so when it noticed.
                dropped = self.counts.dropped
                dropped["store_lost"] = (
                    dropped.get("store_lost", 0) + lost - self.store_lost
                )
                self.store_lost = lost
            self.outstanding = out
            self.settled = self.settled_local + self.put_total - out
            self.progress.notify_all()

    def note_left(self) -> None:
        """At exit: count (and say) this process's events a durable store keeps
        for the next process."""
        self.refresh()
        # Only what outlives the process is "left in the store": a memory
        # fallback's events end with it (the exit message counts them lost).
        self.left_in_store = self.store.kept()
        self.left_unanswered = self.store.unanswered()
        if self.left_in_store:
            logger.info(
                "bento_track: %d events of this process are left in the store "
                "%s; the next process that opens it delivers them",
                self.left_in_store,
                self.store.location,
            )
