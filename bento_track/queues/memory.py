"""The default queue backend: a deque in this process's memory. Fast, bounded
by the client's `max_queue_size` / `max_queue_bytes`, lost if the process dies.
`MemoryStore` is the `Store` the worker sees in front of it."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from .._delivery.batcher import Record
from .._delivery.budget import RequestBudget
from .base import Claim, Lease, Permit, StorePolicy, StoreStats

if TYPE_CHECKING:
    from .._delivery.clock import Clock
    from . import QueueBackend

__all__ = ["MemoryQueue", "MemoryStore"]


class MemoryQueue:
    """A FIFO of encoded events kept in memory."""

    def __init__(self) -> None:
        self._items: deque[Record] = deque()
        self._nbytes = 0

    def put(self, records: Iterable[Record]) -> None:
        batch = records if isinstance(records, list) else list(records)
        self._items.extend(batch)
        self._nbytes += sum(map(len, batch)) + len(batch)

    def requeue(self, records: list[Record]) -> None:
        self._items.extendleft(reversed(records))
        self._nbytes += sum(map(len, records)) + len(records)

    def get_batch(self, max_count: int, max_bytes: int) -> list[Record]:
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
        out = [self._items.popleft() for _ in range(min(count, len(self._items)))]
        self._nbytes -= sum(map(len, out)) + len(out)
        return out

    def drop_newest(self, count: int) -> list[Record]:
        out = [self._items.pop() for _ in range(min(count, len(self._items)))]
        out.reverse()
        self._nbytes -= sum(map(len, out)) + len(out)
        return out

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
        self._nbytes = 0

    def after_fork(self) -> None:
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
    """

    durable = False
    location = "memory"

    def __init__(self, backend: QueueBackend | None = None) -> None:
        self.backend: QueueBackend = backend if backend is not None else MemoryQueue()
        self._policy: StorePolicy | None = None
        self._clock: Clock | None = None
        self._budget: RequestBudget | None = None
        self._leased = 0
        self._tokens = 0
        # When the age of the waiting batch started: the first put into an
        # empty queue, or the last delivery that left events behind.
        self._oldest_at: float | None = None

    def configure(self, policy: StorePolicy, clock: object) -> None:
        self._policy = policy
        self._clock = cast("Clock", clock)
        self._budget = RequestBudget(
            policy.requests_per_window, policy.window, self._clock
        )

    @property
    def budget(self) -> RequestBudget:
        assert self._budget is not None, "configure() first"
        return self._budget

    def put(self, records: list[Record]) -> list[Record]:
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
            dropped += (
                backend.drop_oldest(step) if oldest else backend.drop_newest(step)
            )
        return dropped

    def claim(self, force: bool) -> Claim:
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
        hold = self.budget.delay()
        due = 0.0
        if not force:
            full = count >= policy.max_count or nbytes >= policy.max_bytes
            if not full and self._oldest_at is not None:
                due = max(0.0, self._oldest_at + policy.flush_interval - now)
        delay = max(hold, due)
        if delay > 0.0:
            return Claim(None, delay, count, nbytes, budget_bound=hold > 0.0)
        records = backend.get_batch(policy.max_count, policy.max_bytes)
        self._leased += len(records)
        self._tokens += 1
        return Claim(Lease(self._tokens, records, permit=0), 0.0, count, nbytes)

    def acquire(self) -> tuple[Permit | None, float]:
        delay = self.budget.delay()
        return (0, 0.0) if delay <= 0.0 else (None, delay)

    def complete(self, permit: Permit) -> None:
        self.budget.record()

    def pause(self, seconds: float) -> None:
        self.budget.pause(seconds)

    def paused_until(self) -> float | None:
        assert self._clock is not None
        left = self.budget.paused_until - self._clock.monotonic()
        return self._clock.time() + left if left > 0 else None

    def renew(self, lease: Lease) -> None:
        pass

    def split(self, lease: Lease) -> tuple[Lease, Lease]:
        return lease.split()

    def ack(self, lease: Lease) -> None:
        self._settle(lease)
        assert self._clock is not None
        if not self._leased:
            # The next partial batch waits a full interval from now.
            self._oldest_at = self._clock.monotonic() if len(self.backend) else None

    def reject(self, lease: Lease) -> None:
        self._settle(lease)

    def _settle(self, lease: Lease) -> None:
        self._leased -= len(lease.records)

    def release(self, lease: Lease) -> None:
        self._leased -= len(lease.records)
        self.backend.requeue(lease.records)

    def outstanding(self) -> int:
        return len(self.backend) + self._leased

    def memory_held(self) -> int:
        return len(self.backend) + self._leased

    def stats(self) -> StoreStats:
        policy = self._policy
        clock = self._clock
        age = None
        if self._oldest_at is not None and clock is not None:
            age = max(0.0, clock.monotonic() - self._oldest_at)
        budget = self._budget
        used = 0
        if budget is not None and clock is not None:
            used = budget.used()
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
            budget_limit=policy.requests_per_window if policy else 0,
            budget_window=policy.window if policy else 0.0,
            paused_until=self.paused_until() if budget is not None else None,
        )

    def after_fork(self) -> None:
        self._leased = 0
        self._oldest_at = None
        self.backend.after_fork()

    def close(self) -> None:
        pass
