"""The `Store` interface: where encoded events wait, and whose request budget
the worker spends.

A store is what the delivery worker talks to, and the worker has one code
path for all of them. The in-process `MemoryStore` (the default) keeps events
in a `QueueBackend` and the budget in this process; `SQLiteStore` keeps both
in a file that every process on the host shares; a Redis store (next) keeps
them on a server that every host shares. What the worker needs from each:

- `put` encoded events (the worker moves captured events in, in groups),
  with the bound and its overflow policy applied where the events live;
- `claim` a batch: one atomic step that checks the shared 429 pause and the
  request budget, checks that a batch is due (full, old enough, or a flush),
  leases the oldest events and spends one permit for the request. Nothing is
  spent when nothing leaves, and a batch never leaves without a permit;
- `acquire` a permit for a request on events already leased (a retry of a
  bisection half), `complete` it when the request ends (answer or error);
- settle a lease: `ack` (Bento accepted it: the events are deleted),
  `reject` (Bento refused a single event: deleted and counted), `release`
  (put back for a later try, by any process), `renew` (still working on it);
- `pause` everyone after a 429;
- `outstanding`: how many of the events this process put are still in the
  store (delivered by anyone else or not), so `flush()` knows when what this
  process captured is settled.

Leases make delivery at-least-once: a leased event is invisible to other
processes until it is acked, rejected or released, and a lease whose holder
died is taken over by another process. Halves of a bisected batch stay
leased by the process that split them (`Lease.split`) until each is settled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .._core.records import BODY_OVERHEAD, BatchPolicy, Record
from .account import UNNAMED, Account

__all__ = [
    "AccountStats",
    "Claim",
    "Lease",
    "Permit",
    "Store",
    "StorePolicy",
    "StoreStats",
]

#: A spent budget permit, given back to `Store.complete` when the request
#: ends (0 for a store that notes completions without naming the permit).
Permit = int


@dataclass
class Lease:
    """Events taken out of a store by this process for one request.

    Attributes:
        token: the lease's id in its store.
        records: the encoded events, oldest first.
        ids: their row ids in a durable store, ascending (empty in memory).
        origins: for each record, the id of the process that put it (a
            durable store's `outstanding` counts per process).
        permit: the permit `claim` spent on the first request, if any.
    """

    token: int
    records: list[Record]
    ids: list[int] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    permit: Permit | None = None

    def __len__(self) -> int:
        return len(self.records)

    def split(self) -> tuple[Lease, Lease]:
        """Two halves (first, second) still held under the same lease."""
        half = len(self.records) // 2
        return (
            Lease(
                self.token, self.records[:half], self.ids[:half], self.origins[:half]
            ),
            Lease(
                self.token, self.records[half:], self.ids[half:], self.origins[half:]
            ),
        )


@dataclass(frozen=True)
class Claim:
    """What `Store.claim` found.

    Attributes:
        lease: a batch to send now, with its permit spent; or None.
        delay: when `lease` is None, seconds until it is worth asking again
            (the 429 pause, the budget, or the batch's age); None when
            nothing is waiting in the store.
        count: events waiting (not leased) when the claim was made.
        nbytes: their size (sum of `record_size`).
        budget_bound: the wait is the budget's or a pause's (more events
            would not make a request come sooner).
    """

    lease: Lease | None
    delay: float | None
    count: int = 0
    nbytes: int = 0
    budget_bound: bool = False


@dataclass(frozen=True)
class StorePolicy:
    """What the worker asks of a store: batching, budget and bound settings
    (see `Client` for their meaning). Given to `Store.configure`.

    Attributes:
        max_count: events per request.
        max_bytes: bytes of events per request (the body less its envelope).
        flush_interval: seconds the oldest waiting event may wait.
        requests_per_window / window: the request budget.
        overflow: `drop_newest`, `drop_oldest` or `block`.
        max_events / max_bytes_held: the memory store's bound (a durable
            store has its own, in bytes on disk).
        account: whose events these are: a shared store claims, budgets,
            pauses and counts per account (`Account`).
        budgeted: claims spend the request budget and heed a 429 pause.
            False for a store that only holds events for another one (a
            Redis store's fallback: moving events into Redis is no request):
            its claims wait for nothing, carry no permit and record none.
    """

    max_count: int
    max_bytes: int
    flush_interval: float
    requests_per_window: int
    window: float
    overflow: str = "drop_newest"
    max_events: int = 10_000
    max_bytes_held: int = 10 * 1_048_576
    account: Account = UNNAMED
    budgeted: bool = True

    def due_in(
        self,
        count: int,
        nbytes: int,
        since: float | None,
        now: float,
        *,
        force: bool = False,
    ) -> float | None:
        """Seconds until a batch of `count` waiting events (`nbytes`) is due,
        None if nothing waits: `BatchPolicy.due_in` on these limits (whose
        `max_bytes` is without the body's envelope)."""
        batching = BatchPolicy(
            self.max_count, self.max_bytes + BODY_OVERHEAD, self.flush_interval
        )
        return batching.due_in(count, nbytes, since, now, force=force)


@dataclass(frozen=True)
class StoreStats:
    """A store as an operator sees it (`Client.stats().store`,
    `bento-track store URL`).

    Attributes:
        kind: "memory" or "sqlite".
        location: the file (None in memory).
        depth: events in the store, leased ones included.
        nbytes: their encoded size (sum of `record_size`).
        max_bytes: the store's bound in bytes.
        leased: events under lease (being sent, or bisection halves).
        leases: leases held, by every process.
        oldest_age: seconds since the oldest waiting event was stored.
        budget_used: requests started in the current window (by every
            process sharing the store) and requests still in flight.
        budget_limit / budget_window: the budget last configured.
        paused_until: epoch seconds until which sending is paused (429).
        reclaimed: events taken over from processes that died holding them
            (each may be delivered twice: the duplicate window).
        dropped: events the store's bound dropped (every process).
        processes: processes registered with the store.
        schema_version: the file's schema version (None in memory).
        site_uuid: the account these figures describe (the client's); None
            when they cover the whole store (`bento-track store`).
        accounts: every account with events in the store, by `site_uuid`.
        unassigned: events written before stores knew accounts: never sent
            with a guessed account (`bento-track store URL --adopt`).
        stale: the store could not be read just now; these are the figures
            last read (None-free, but possibly out of date).
    """

    kind: str
    location: str | None
    depth: int
    nbytes: int
    max_bytes: int
    leased: int
    leases: int
    oldest_age: float | None
    budget_used: int
    budget_limit: int
    budget_window: float
    paused_until: float | None
    reclaimed: int = 0
    dropped: int = 0
    processes: int = 1
    schema_version: int | None = None
    site_uuid: str | None = None
    accounts: tuple[AccountStats, ...] = ()
    unassigned: int = 0
    stale: bool = False


@dataclass(frozen=True)
class AccountStats:
    """One account's part of a shared store (`StoreStats.accounts`).

    Attributes:
        site_uuid: the account's site (its keys are never shown).
        depth: its events in the store, leased ones included.
        nbytes: their encoded size.
        oldest_age: seconds since its oldest event was stored.
        budget_used: its requests in the current window and in flight.
        budget_limit / budget_window: its budget, as last configured.
        paused_until: epoch seconds until which its sending is paused.
    """

    site_uuid: str
    depth: int
    nbytes: int
    oldest_age: float | None = None
    budget_used: int = 0
    budget_limit: int = 0
    budget_window: float = 0.0
    paused_until: float | None = None


@runtime_checkable
class Store(Protocol):
    """Where events wait and whose budget is spent (see the module docstring).

    Methods are called from the client's worker thread, and `stats` /
    `outstanding` / `put` also from other threads of the process (`stats()`,
    a shutdown that outlived the worker): an implementation guards its own
    handles. `durable` stores keep events across processes and restarts.
    """

    #: events survive this process (and are shared with others)
    durable: bool
    #: where it lives, for messages (no secrets)
    location: str

    def configure(self, policy: StorePolicy, clock: object) -> None:
        """Take the worker's settings and clock (a `Clock`); called by every
        new worker, so also after a fork."""
        ...

    def put(self, records: list[Record]) -> list[Record]:
        """Store `records` (oldest first) under the bound; return those the
        overflow policy dropped (new or old ones) to be reported."""
        ...

    def claim(self, force: bool) -> Claim:
        """A due batch with its permit, or how long to wait (see `Claim`).
        `force`: a flush is waiting, so a partial batch is due now."""
        ...

    def acquire(self) -> tuple[Permit | None, float]:
        """A permit for a request that `claim` did not pay for (a retry on
        leased events, or the app's own through `Client.request_permit`):
        (permit, 0.0), or (None, seconds to wait) while the budget or a
        pause forbids a request. Thread-safe: app threads call it too."""
        ...

    def complete(self, permit: Permit) -> None:
        """The request made with `permit` ended (answered or failed)."""
        ...

    def pause(self, seconds: float) -> None:
        """Stop every sender of this store for `seconds` (never shortens)."""
        ...

    def paused_until(self) -> float | None:
        """Epoch seconds until which sending is paused, or None."""
        ...

    def renew(self, lease: Lease) -> None:
        """Keep `lease` from expiring (before each request on it)."""
        ...

    def split(self, lease: Lease) -> tuple[Lease, Lease]:
        """Two halves of `lease` (a rejected batch's bisection) that can be
        settled apart, both still leased by this process."""
        ...

    def ack(self, lease: Lease) -> None:
        """Bento accepted the lease's events: delete them."""
        ...

    def reject(self, lease: Lease) -> None:
        """Bento refused the lease's events for good: delete them."""
        ...

    def release(self, lease: Lease) -> None:
        """Put the lease's events back, in order, for a later try."""
        ...

    def outstanding(self) -> int:
        """Events this process put that are still in the store."""
        ...

    def kept(self) -> int:
        """Of `outstanding()`, the events that outlive this process: in the
        file, on the Redis server, in a durable fallback. The rest (a memory
        fallback, a write whose answer was lost) end with the process, and
        the exit message counts them as lost."""
        ...

    def unanswered(self) -> int:
        """Of the events `kept()` leaves out, those written to the store
        without an answer (a hung Redis): they may still arrive, so the
        exit message says so rather than "never reached the store"."""
        ...

    def lost(self) -> int:
        """Events this process put that the store lost (a SQLite file deleted
        under it): the worker counts them as dropped (`store_lost`)."""
        ...

    def memory_held(self) -> int:
        """Events the store keeps in this process's memory (what the
        capture-time `max_queue_size` bound counts besides the inbox)."""
        ...

    def stats(self) -> StoreStats:
        """The store's figures for an operator (see `StoreStats`); in a shared
        store they cover every process."""
        ...

    def after_fork(self) -> None:
        """In a forked child: forget what belongs to the parent (its handles,
        and in memory its events)."""
        ...

    def close(self) -> None:
        """Close handles; a later call reopens them."""
        ...
