"""Delivery figures: the counters one worker keeps (`Counters`) and the
snapshot of them that `Client.stats()` returns (`DeliveryStats`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..stores import StoreStats

__all__ = ["Counters", "DeliveryStats"]


@dataclass(frozen=True)
class DeliveryStats:
    """A snapshot of one client's delivery counters (`Client.stats()`).

    Attributes:
        enqueued: events accepted into the queue.
        sent: events in requests Bento answered with 2xx.
        accepted: sum of Bento's `results` over those answers.
        failed: sum of Bento's `failed` over those answers.
        rejected: events Bento refused (400/422 isolated by bisection).
        retried: requests retried (5xx, 408, 429, network errors).
        requests: requests made.
        responses: those requests by how they ended: the HTTP status
            ("200", "429", "503", ...) or "error" (no answer: a network
            error or a timeout).
        updates_sent: subscriber updates Bento accepted, by kind ("upsert",
            "command"), counted apart from `sent` (events). `enqueued`,
            `dropped` and `queue_depth` count them with the events.
        dropped: events that will never be delivered, by reason.
        queue_depth: events of this process waiting (inbox, queue and in
            flight; with a durable store, its events still in the store).
        last_success_at / last_error_at: epoch seconds, or None.
        last_error: the last error message (secrets redacted), or None.
        paused_until: epoch seconds until which sending is paused (429), or None.
        auth_failed: Bento refused our credentials (401/403/404); sending stopped.
        receiver_errors: calls to receivers of our signals that raised
            (logged and ignored).
        store: the store's own figures (depth, bytes, leases, budget; for
            a durable store, every process's), or None if unavailable.
        store_errors: failed writes to a durable store (the events wait in
            memory and are written again; see the log).
    """

    enqueued: int
    sent: int
    accepted: int
    failed: int
    rejected: int
    retried: int
    requests: int
    dropped: dict[str, int]
    queue_depth: int
    last_success_at: float | None
    last_error_at: float | None
    last_error: str | None
    paused_until: float | None
    auth_failed: bool
    receiver_errors: int = 0
    store: StoreStats | None = None
    store_errors: int = 0
    responses: dict[str, int] = field(default_factory=dict)
    updates_sent: dict[str, int] = field(default_factory=dict)


@dataclass
class Counters:
    """What one worker has counted so far: `DeliveryStats` less the figures
    read when the snapshot is taken (depth, the store's, the flags).

    Capture threads update `dropped` and `receiver_errors` too, under the
    worker's `progress` lock; the rest belongs to the worker thread."""

    sent: int = 0
    accepted: int = 0
    failed: int = 0
    rejected: int = 0
    retried: int = 0
    requests: int = 0
    #: subscriber upserts and commands delivered, by kind ("upsert", ...)
    updates_sent: dict[str, int] = field(default_factory=dict)
    #: requests by HTTP status, or "error" when none came back
    responses: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    receiver_errors: int = 0
    store_errors: int = 0
    last_success_at: float | None = None
    last_error_at: float | None = None
    last_error: str | None = None

    def error(self, message: str, at: float) -> None:
        """Note `message` as the last error, seen at epoch second `at`."""
        self.last_error = message
        self.last_error_at = at

    def snapshot(
        self,
        *,
        dropped: dict[str, int],
        enqueued: int,
        queue_depth: int,
        store: StoreStats | None,
        auth_failed: bool,
    ) -> DeliveryStats:
        """These counts as a `DeliveryStats`, with the figures the worker read
        for it (`dropped` copied under its lock)."""
        return DeliveryStats(
            enqueued=enqueued,
            sent=self.sent,
            accepted=self.accepted,
            failed=self.failed,
            rejected=self.rejected,
            retried=self.retried,
            requests=self.requests,
            dropped=dropped,
            queue_depth=queue_depth,
            last_success_at=self.last_success_at,
            last_error_at=self.last_error_at,
            last_error=self.last_error,
            paused_until=store.paused_until if store else None,
            auth_failed=auth_failed,
            receiver_errors=self.receiver_errors,
            store=store,
            store_errors=self.store_errors,
            responses=dict(self.responses),
            updates_sent=dict(self.updates_sent),
        )
