"""The default queue backend: a deque in this process's memory. Fast, bounded
by the client's `max_queue_size` / `max_queue_bytes`, lost if the process dies.
`MemoryStore` is the `Store` the worker sees in front of it."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from .._core.budget import RequestBudget
from .._core.kinds import run
from .._core.records import Record
from .base import Claim, Lease, Permit, StorePolicy, StoreStats

if TYPE_CHECKING:
    from .._core.clock import Clock
    from . import QueueBackend

__all__ = ["MemoryQueue", "MemoryStore"]


class MemoryQueue:
    """A FIFO of encoded events kept in memory."""

    def __init__(self) -> None:
        self._items: deque[Record] = deque()
        self._nbytes = 0

    def put(self, records: Iterable[Record]) -> None:
        """`QueueBackend.put`: Append records at the tail."""
        batch = records if isinstance(records, list) else list(records)
        self._items.extend(batch)
        self._nbytes += sum(map(len, batch)) + len(batch)

    def requeue(self, records: list[Record]) -> None:
        """`QueueBackend.requeue`: Put records back at the head, in order (a batch
        that will be retried)."""
        self._items.extendleft(reversed(records))
        self._nbytes += sum(map(len, records)) + len(records)

    def get_batch(self, max_count: int, max_bytes: int) -> list[Record]:
        """`QueueBackend.get_batch`: Remove and return up to `max_count` records
        from the head whose sizes (`record_size`) sum to at most `max_bytes`
        (always at least one record when not empty)."""
        items = self._items
        popleft = items.popleft
        out = [popleft() for _ in range(min(max_count, len(items)))]
        size = sum(map(len, out)) + len(out)
        while size > max_bytes and len(out) > 1:  # too big: give back the tail
            last = out.pop()
            items.appendleft(last)
            size -= len(last) + 1
        self._nbytes -= size
        return out

    def drop_oldest(self, count: int) -> list[Record]:
        """`QueueBackend.drop_oldest`: Remove and return up to `count` records from
        the head."""
        out = [self._items.popleft() for _ in range(min(count, len(self._items)))]
        self._nbytes -= sum(map(len, out)) + len(out)
        return out

    def drop_newest(self, count: int) -> list[Record]:
        """`QueueBackend.drop_newest`: Remove and return up to `count` records from
        the tail."""
        out = [self._items.pop() for _ in range(min(count, len(self._items)))]
        out.reverse()
        self._nbytes -= sum(map(len, out)) + len(out)
        return out

    @property
    def nbytes(self) -> int:
        """`QueueBackend.nbytes`: Sum of `record_size` of the records held."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """`QueueBackend.clear`: Forget every record."""
        self._items.clear()
        self._nbytes = 0

    def after_fork(self) -> None:
        """`QueueBackend.after_fork`: Called in a forked child: the memory backend
        forgets the parent's events (the parent delivers them); a durable one
        reopens its handles."""
        self.clear()


class MemoryStore:
    """The default `Store`: events in a `QueueBackend` of this process (a
    `MemoryQueue` unless `Client(queue=...)` gave another), the budget in a
    `RequestBudget` on the worker's monotonic clock. Nothing is shared and
    nothing survives the process.

    Leases are the batches and bisection halves the worker holds; the bound
    is `max_queue_size` events (checked at capture, overshoot trimmed here
    under `drop_oldest`) and `max_queue_bytes` (trimmed here, by 1% steps,
    oldest first under `drop_oldest`, else newest first).

    The budget is shared: the worker thread spends it (`claim`, `acquire`,
    `complete`, `pause`) and so may any thread of the app through
    `Client.request_permit` (the Django email backend's requests), so every
    use of it holds the store's lock. Events stay the worker's alone: `put`
    and the leases take no lock, and the lock is taken once per request,
    never per event.

    Configured with `StorePolicy.budgeted` False (a Redis store's memory
    fallback), it is a queue alone: no budget, no pause, no permits.
    """

    durable = False
    location = "memory"

    def __init__(self, backend: QueueBackend | None = None) -> None:
        self.backend: QueueBackend = backend if backend is not None else MemoryQueue()
        self._policy: StorePolicy | None = None
        self._clock: Clock | None = None
        self._budget: RequestBudget | None = None
        #: guards the budget (see the class docstring)
        self._lock = threading.Lock()
        self._leased = 0
        self._tokens = 0
        #: events the bound dropped (`StoreStats.dropped`)
        self._dropped = 0
        # When the age of the waiting batch started: the first put into an
        # empty queue, or the last delivery that left events behind.
        self._oldest_at: float | None = None

    def configure(self, policy: StorePolicy, clock: object) -> None:
        """`Store.configure`: Take the worker's settings and clock (a `Clock`);
        called by every new worker, so also after a fork."""
        self._policy = policy
        self._clock = cast("Clock", clock)
        with self._lock:
            self._budget = (
                RequestBudget(policy.requests_per_window, policy.window, self._clock)
                if policy.budgeted
                else None
            )

    @property
    def budget(self) -> RequestBudget:
        """This process's request budget (the memory store's own; shared
        stores keep theirs in the file or on Redis): only after `configure`,
        and only for a store with one (`StorePolicy.budgeted`)."""
        assert self._budget is not None, "configure() first, with a budget"
        return self._budget

    def put(self, records: list[Record]) -> list[Record]:
        """`Store.put`: Store `records` (oldest first) under the bound; return
        those the overflow policy dropped (new or old ones) to be reported."""
        policy = self._policy
        assert policy is not None and self._clock is not None
        backend = self.backend
        backend.put(records)
        if self._oldest_at is None:
            self._oldest_at = self._clock.monotonic()
        oldest = policy.overflow == "drop_oldest"
        dropped: list[Record] = []
        excess = len(backend) + self._leased - policy.max_events
        if excess > 0 and oldest:
            dropped += backend.drop_oldest(excess)
        while backend.nbytes > policy.max_bytes_held and len(backend):
            step = max(1, len(backend) // 100)
            if oldest:
                dropped += backend.drop_oldest(step)
            else:  # each step is older than the last: it goes first
                dropped[:0] = backend.drop_newest(step)
        self._dropped += len(dropped)
        return dropped

    def claim(self, force: bool) -> Claim:
        """`Store.claim`: A due batch with its permit, or how long to wait (see
        `Claim`). `force`: a flush is waiting, so a partial batch is due now."""
        policy = self._policy
        assert policy is not None and self._clock is not None
        backend = self.backend
        count = len(backend)
        if not count:
            if not self._leased:
                self._oldest_at = None
            return Claim(None, None)
        nbytes = backend.nbytes
        now = self._clock.monotonic()
        due = policy.due_in(count, nbytes, self._oldest_at, now, force=force) or 0.0
        with self._lock:
            budget = self._budget
            hold = 0.0 if budget is None else budget.delay()
            delay = max(hold, due)
            if delay <= 0.0 and budget is not None:
                budget.start()
        if delay > 0.0:
            return Claim(None, delay, count, nbytes, budget_bound=hold > 0.0)
        records = backend.get_batch(policy.max_count, policy.max_bytes)
        same = run(records, policy.max_count)
        if same < len(records):  # a batch holds one kind of record
            backend.requeue(records[same:])
            del records[same:]
        self._leased += len(records)
        self._tokens += 1
        permit = None if budget is None else 0
        return Claim(Lease(self._tokens, records, permit=permit), 0.0, count, nbytes)

    def acquire(self) -> tuple[Permit | None, float]:
        """`Store.acquire`: A permit for a retry on leased events: (permit, 0.0),
        or (None, seconds to wait) while the budget or a pause forbids a request.
        Thread-safe: the permit is counted in flight until `complete`. A
        store without a budget grants every request."""
        with self._lock:
            budget = self._budget
            if budget is None:
                return 0, 0.0
            delay = budget.delay()
            if delay > 0.0:
                return None, delay
            budget.start()
        return 0, 0.0

    def complete(self, permit: Permit) -> None:
        """`Store.complete`: The request made with `permit` ended (answered or
        failed)."""
        with self._lock:
            if self._budget is not None:
                self._budget.record()

    def pause(self, seconds: float) -> None:
        """`Store.pause`: Stop every sender of this store for `seconds` (never
        shortens); nothing for a store without a budget (it sends nothing)."""
        with self._lock:
            if self._budget is not None:
                self._budget.pause(seconds)

    def paused_until(self) -> float | None:
        """`Store.paused_until`: Epoch seconds until which sending is paused, or
        None."""
        assert self._clock is not None
        with self._lock:
            if self._budget is None:
                return None
            left = self._budget.paused_until - self._clock.monotonic()
        return self._clock.time() + left if left > 0 else None

    def renew(self, lease: Lease) -> None:
        """`Store.renew`: Keep `lease` from expiring (before each request on it)."""

    def split(self, lease: Lease) -> tuple[Lease, Lease]:
        """`Store.split`: Two halves of `lease` (a rejected batch's bisection) that
        can be settled apart, both still leased by this process."""
        return lease.split()

    def ack(self, lease: Lease) -> None:
        """`Store.ack`: Bento accepted the lease's events: delete them."""
        self._settle(lease)
        assert self._clock is not None
        if not self._leased:
            # The next partial batch waits a full interval from now.
            self._oldest_at = self._clock.monotonic() if len(self.backend) else None

    def reject(self, lease: Lease) -> None:
        """`Store.reject`: Bento refused the lease's events for good: delete them."""
        self._settle(lease)

    def _settle(self, lease: Lease) -> None:
        self._leased -= len(lease.records)

    def release(self, lease: Lease) -> None:
        """`Store.release`: Put the lease's events back, in order, for a later try."""
        self._leased -= len(lease.records)
        self.backend.requeue(lease.records)

    def outstanding(self) -> int:
        """`Store.outstanding`: Events this process put that are still in the
        store."""
        return len(self.backend) + self._leased

    def kept(self) -> int:
        """`Store.kept`: nothing outlives this process in its memory."""
        return 0

    def unanswered(self) -> int:
        """`Store.unanswered`: none (memory writes are always answered)."""
        return 0

    def lost(self) -> int:
        """`Store.lost`: memory loses nothing while the process lives."""
        return 0

    def memory_held(self) -> int:
        """`Store.memory_held`: Events the store keeps in this process's memory
        (what the capture-time `max_queue_size` bound counts besides the inbox)."""
        return len(self.backend) + self._leased

    def stats(self) -> StoreStats:
        """`Store.stats`: this process's queue, leases and budget (nothing
        is shared in memory)."""
        policy = self._policy
        clock = self._clock
        age = None
        if self._oldest_at is not None and clock is not None:
            age = max(0.0, clock.monotonic() - self._oldest_at)
        budget = self._budget
        used, limit, window = 0, 0, 0.0
        if budget is not None and clock is not None and policy is not None:
            with self._lock:
                used = budget.used() + budget.in_flight
            limit, window = policy.requests_per_window, policy.window
        return StoreStats(
            kind="memory",
            location=None,
            depth=len(self.backend) + self._leased,
            nbytes=self.backend.nbytes,
            max_bytes=policy.max_bytes_held if policy else 0,
            leased=self._leased,
            leases=1 if self._leased else 0,
            oldest_age=age,
            budget_used=used,
            budget_limit=limit,
            budget_window=window,
            paused_until=self.paused_until() if budget is not None else None,
            dropped=self._dropped,
        )

    def after_fork(self) -> None:
        """`Store.after_fork`: In a forked child: forget what belongs to the parent
        (its handles, and in memory its events)."""
        # A lock some thread of the parent held stays held here: a new one.
        self._lock = threading.Lock()
        self._leased = 0
        self._dropped = 0  # the parent's drops are the parent's
        self._oldest_at = None
        self.backend.after_fork()

    def close(self) -> None:
        """`Store.close`: Close handles; a later call reopens them."""
