"""The delivery worker: one daemon thread per client per process that runs
the delivery loop (drain the inbox into the store, plan, send, sleep) and its
lifecycle (start, flush, stop, sync mode). In sync mode the same steps run in
the caller's thread. The loop's parts live beside it:

- `inbox`: the inbox into the store (encoding once, the spill);
- `planning`: the next step, a request to make or how long to wait;
- `outcomes`: an answer's consequences (retry, bisection, broken sending);
- `ledger`: which enqueued events are settled (what `flush()` waits for);
- `drops` and `stats`: the drop log and signal, and the counters.

One code path for every store (`bento_track.stores.Store`): the in-process
memory store, or a durable one that several processes share. With a durable
store the worker drains the inbox in groups (`inbox.GROUP_INTERVAL`) and
polls the store while idle, since other processes (or dead ones) leave
events there too.

Threads: capture threads only `append` to `inbox` and read two ints (`held`,
`wake_at`); everything else here belongs to the worker thread (or, in sync
mode, to whoever holds `sync_lock`). The few counters capture threads touch
(drops, evictions) are updated under `progress`, a Condition also used to wake
`flush()` callers and producers blocked by the `block` overflow policy.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._core.clock import Clock
from .._core.kinds import KINDS, body
from .._core.records import BODY_OVERHEAD, BatchPolicy
from .._internal import library_section, logger
from ..options import default
from ..stores import UNNAMED, Account, Store, StoreError, StorePolicy
from .drops import Drops
from .inbox import NEVER, UPDATES, Intake, Queued
from .ledger import Ledger
from .outcomes import Outcomes
from .planning import Job, plan
from .sender import Sender
from .stats import Counters, DeliveryStats

__all__ = ["UPDATES", "DeliveryStats", "Queued", "Worker", "WorkerSettings"]

#: seconds between looks at a durable store while nothing of ours waits
#: (other processes' events, a dead process's leftovers)
POLL_INTERVAL = 0.5
#: seconds between looks while a flush waits for other processes
FLUSH_POLL = 0.02


@dataclass(frozen=True)
class WorkerSettings:
    """Validated delivery options (see `Client` for their meaning; defaults
    from `bento_track.options`, the one declaration)."""

    max_batch_size: int = default("max_batch_size")
    max_batch_bytes: int = default("max_batch_bytes")
    flush_interval: float = default("flush_interval")
    requests_per_minute: int = default("requests_per_minute")
    rate_window: float = default("rate_window")
    max_queue_size: int = default("max_queue_size")
    max_queue_bytes: int = default("max_queue_bytes")
    overflow: str = default("overflow")
    block_timeout: float = default("block_timeout")
    max_retry_time: float = default("max_retry_time")
    sync_timeout: float = default("sync_timeout")
    retry_base_delay: float = default("retry_base_delay")
    sync_mode: bool = default("sync_mode")
    #: whose events: a shared store keeps each account's apart
    account: Account = UNNAMED


class Worker:
    """Delivery for one client in one process. Build a new one after a fork."""

    def __init__(
        self,
        owner: object,
        settings: WorkerSettings,
        store: Store,
        sender: Sender | None,
        clock: Clock,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.owner = owner  # the Client: the sender of every signal
        self.settings = settings
        self.store = store
        #: the memory store's backend (None for a durable store)
        self.backend = getattr(store, "backend", None)
        self.durable = store.durable
        self.sender = sender
        self.clock = clock
        self.rand = rand
        self.policy = BatchPolicy(
            settings.max_batch_size, settings.max_batch_bytes, settings.flush_interval
        )
        store.configure(
            StorePolicy(
                max_count=settings.max_batch_size,
                max_bytes=settings.max_batch_bytes - BODY_OVERHEAD,
                flush_interval=settings.flush_interval,
                requests_per_window=settings.requests_per_minute,
                window=settings.rate_window,
                overflow=settings.overflow,
                max_events=settings.max_queue_size,
                max_bytes_held=settings.max_queue_bytes,
                account=settings.account,
            ),
            clock,
        )
        # -- shared with capture threads -------------------------------------
        self.inbox: deque[Queued] = deque()
        #: events the worker holds in memory besides the inbox (the memory
        #: store's queue, bisection work, in flight; for a durable store,
        #: events it could not write yet): the capture-time bound counts them
        self.held = 0
        #: the part of `held` the store keeps in memory (`Store.memory_held`)
        self.store_memory = 0
        #: wake the worker when the inbox reaches this length
        self.wake_at = 1
        #: set to wake the worker thread (`poke`, `stop`)
        self.wake = threading.Event()
        self.progress = threading.Condition(threading.Lock())
        self.sync_lock = threading.Lock()
        self._never = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.stopping = False
        #: real-time (time.monotonic) deadline that caps HTTP timeouts (shutdown)
        self.deadline: float | None = None
        self.drained = 0
        self.evicted = 0
        self.auth_failed = False
        #: why sending cannot work in this process (`Outcomes.raised`), or None
        self.broken: str | None = None
        # -- the loop's parts --------------------------------------------------
        self.counts = Counters()
        self.drops = Drops(owner, self.counts, self.progress)
        self.ledger = Ledger(store, self.counts, self.progress)
        self.intake = Intake(self)
        self.outcomes = Outcomes(self)

    # -- figures the client reads ----------------------------------------------

    @property
    def dropped(self) -> dict[str, int]:
        """Events dropped, by reason (update it under `progress`)."""
        return self.counts.dropped

    @property
    def last_error(self) -> str | None:
        """The last error message (secrets redacted), or None."""
        return self.counts.last_error

    @property
    def settled(self) -> int:
        """Enqueued events done with: delivered, rejected or dropped."""
        return self.ledger.settled

    @property
    def left_in_store(self) -> int | None:
        """Events left in a durable store when the worker stopped."""
        return self.ledger.left_in_store

    @property
    def left_unanswered(self) -> int:
        """Of those, events written without an answer (may still arrive)."""
        return self.ledger.left_unanswered

    # -- capture side ----------------------------------------------------------

    def poke(self) -> None:
        """Wake the worker (starting its thread on first use)."""
        # Until the worker publishes a new threshold, other captures need not
        # poke again: one `Event.set()` per wake-up, not one per event.
        self.wake_at = NEVER
        if self._thread is None:
            self._start()
        self.wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None or self.stopping:
                return
            thread = threading.Thread(
                target=self._run, name="bento_track.worker", daemon=True
            )
            self._thread = thread
            thread.start()

    def enqueued(self) -> int:
        """Events this worker accepted so far (inbox included)."""
        return self.drained + self.evicted + len(self.inbox)

    def depth(self) -> int:
        """Events waiting: in the inbox, held, and (durable) outstanding,
        each once: what a durable store keeps in memory (a Redis store's
        fallback) is both held and outstanding."""
        if self.durable:
            return (
                len(self.inbox)
                + self.held
                - self.store_memory
                + self.ledger.outstanding
            )
        return len(self.inbox) + self.held

    def drop(
        self,
        events: Sequence[Queued],
        reason: str,
        *,
        queued: bool,
        count: int | None = None,
        error: Exception | None = None,
        message: str | None = None,
        where: str | None = None,
    ) -> None:
        """Count, log (rate-limited) and signal events that will never be
        delivered. `queued` says whether they had been enqueued (so a `flush()`
        stops waiting for them); `count` defaults to `len(events)` (an invalid
        event was never built, so it comes with no `Event`)."""
        n = len(events) if count is None else count
        self.drops.report(events, reason, n, error, message, where)
        # Settled last, so a `flush()` returns after the drop was said.
        if queued:
            self.ledger.settle_local(n)

    def count_receiver_errors(self, n: int) -> None:
        """Add `n` receivers that raised to `stats().receiver_errors`."""
        self.drops.count_receiver_errors(n)

    def evict_from_inbox(self) -> bool:
        """`drop_oldest` at capture: drop the oldest event not yet taken by the
        worker; False if the worker holds them all."""
        with self.progress:
            try:
                old = self.inbox.popleft()
            except IndexError:
                return False
            self.evicted += 1
        self.drop([old], "queue_full", queued=True)
        return True

    def wait_for_space(self, limit: int, timeout: float) -> bool:
        """`block` policy: wait up to `timeout` real seconds for room."""
        deadline = time.monotonic() + timeout
        self.poke()
        with self.progress:
            while len(self.inbox) + self.held >= limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.stopping:
                    return False
                self.progress.wait(remaining)
        return True

    # -- lifecycle -------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Deliver (or settle) everything enqueued so far, within `timeout` real
        seconds. True if all of it was delivered, rejected or dropped."""
        ledger = self.ledger
        with self.progress:
            target = self.enqueued()
        deadline = time.monotonic() + timeout
        if self.settings.sync_mode:
            self.run_sync(timeout)
            return ledger.settled >= target
        with self.progress:
            if ledger.settled >= target:
                return True
            ledger.flush_target = max(ledger.flush_target, target)
        self.poke()
        with self.progress:
            while ledger.settled < target:
                if self.auth_failed or self.stopping:
                    return False
                if self.broken is not None and self.durable:
                    return False  # only other processes can deliver them now
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.progress.wait(remaining)
        return True

    def stop(self, timeout: float) -> None:
        """Stop the thread after its current request; wait up to `timeout`."""
        self.stopping = True
        self.wake.set()
        with self.progress:
            self.progress.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # A durable store's thread gets a moment past the deadline to
            # close the store (its figures and exit line), else a daemon
            # thread dies with the interpreter half-way through.
            thread.join(max(0.5 if self.durable else 0.0, timeout))
        if self.durable and (thread is None or thread.is_alive()):
            # The thread never ran, or is stuck in a request past the
            # deadline: what is still in memory goes to the store from here,
            # where the next process finds it.
            try:
                self.intake.drain(force=True)
                self.ledger.note_left()
                if thread is None or not thread.is_alive():
                    self.store.close()  # else the thread closes it as it ends
            except Exception:
                logger.exception("bento_track: could not save events to the store")
        if (thread is None or not thread.is_alive()) and self.sender is not None:
            self.sender.close()
        lost = self.dropped.get("broken", 0)
        if lost:
            logger.error(
                "bento_track: shut down with %d events lost: delivery in this "
                "process was broken (%s); counted in stats().dropped['broken']",
                lost,
                self.broken,
            )

    def is_alive(self) -> bool:
        """Whether the worker thread is running."""
        return self._thread is not None and self._thread.is_alive()

    # -- the loop --------------------------------------------------------------

    def _run(self) -> None:
        with library_section():
            try:
                while not self.stopping:
                    try:
                        flushing = self.ledger.settled < self.ledger.flush_target
                        self.intake.drain(force=flushing)
                        delay, wake_at, job = plan(self, flushing)
                        if job is not None:
                            self._send(job)
                        else:
                            self._sleep(delay, wake_at, flushing)
                    except StoreError as exc:  # said by the store; try again
                        self._store_trouble(exc)
                        self.clock.wait(self._never, 1.0)
                    except Exception:  # never let the worker die
                        logger.exception(
                            "bento_track: delivery worker error (continuing)"
                        )
                        self.clock.wait(self._never, 1.0)
            finally:
                if self.durable:
                    self._close_store()
                if self.sender is not None:
                    self.sender.close()

    def _close_store(self) -> None:
        """A durable store at exit: what is in memory goes into the store,
        bisection halves are released for any process to retry."""
        try:
            self.intake.drain(force=True)
            pending = self.outcomes.pending
            while pending:
                self.store.release(pending.pop())
            self.ledger.note_left()
            self.store.close()
        except Exception:
            logger.exception("bento_track: could not close the store cleanly")

    def run_sync(self, timeout: float) -> None:
        """Sync mode: run the worker's steps in this thread until the queue is
        empty or `timeout` seconds (of the injected clock) would be exceeded."""
        with self.sync_lock, library_section():
            deadline = self.clock.monotonic() + timeout
            while True:
                self.intake.drain(force=True)
                delay, _, job = plan(self, True)
                if job is not None:
                    self._send(job)
                    continue
                if delay is None:
                    return
                if self.clock.monotonic() + delay > deadline:
                    return
                self.clock.wait(self._never, delay)

    def _sleep(self, delay: float | None, wake_at: int, flushing: bool) -> None:
        # Clear, publish the threshold, then re-check what may have changed
        # since planning, so a wake-up between the two is never lost.
        self.wake.clear()
        if self.durable:
            # Any new event wakes us: the inbox moves to the store every
            # `GROUP_INTERVAL` whatever else waits (a backoff, the budget).
            wake_at = 1
        self.wake_at = wake_at
        changed = (
            len(self.inbox) >= wake_at
            or self.stopping
            or (not flushing and self.ledger.settled < self.ledger.flush_target)
        )
        if not changed:
            if not self.durable:
                self.clock.wait(self.wake, delay)
            else:
                # Other processes change the store too: look again soon, and
                # sooner while a flush waits on them.
                poll = FLUSH_POLL if flushing else POLL_INTERVAL
                if delay is None:
                    # Only other processes can change things: they act in
                    # real time, whatever clock this worker is given.
                    self.wake.wait(poll)
                else:  # a pause, the budget, a batch's age: this clock's time
                    self.clock.wait(self.wake, min(delay, poll))
        self.wake_at = NEVER

    def _store_trouble(self, exc: Exception) -> None:
        """A store operation other than a write failed: counted, logged at
        most once a minute (no traceback: the store's message says why)."""
        self.counts.store_errors += 1
        self.counts.error(f"store: {exc}", self.clock.time())
        self.drops.log.warn(
            "store_trouble", 1, "the store %s: %s", self.store.location, exc
        )

    def update_held(self) -> None:
        """Recount `held` from the store's memory and the spill, and wake
        whoever waits for room or progress."""
        memory = self.store.memory_held()
        held = memory + len(self.intake.spill)
        with self.progress:
            self.held = held
            self.store_memory = memory
            self.progress.notify_all()

    def _send(self, job: Job) -> None:
        """Make one request; `Outcomes` acts on how it ended."""
        lease = job.lease
        kind, payload, items = body(lease.records)
        timeout = None
        if self.deadline is not None:
            timeout = self.deadline - time.monotonic()
        assert self.sender is not None
        try:
            if job.from_pending:
                self.store.renew(lease)
            try:
                outcome = self.sender.post(
                    payload, items, timeout=timeout, path=KINDS[kind].path
                )
            except Exception as exc:  # HTTP trouble is an Outcome: this is not
                self.outcomes.put_back(lease, job.from_pending)
                self.outcomes.raised(exc)
                return
        finally:
            self.store.complete(job.permit)
        self.outcomes.handle(lease, outcome, job.from_pending)

    # -- stats -----------------------------------------------------------------

    def snapshot(self) -> DeliveryStats:
        """A `DeliveryStats` of this worker's counters and its store."""
        try:
            store = self.store.stats()
        except Exception:  # a store that cannot answer leaves its figures out
            store = None
        with self.progress:
            dropped = dict(self.counts.dropped)
        return self.counts.snapshot(
            dropped=dropped,
            enqueued=self.enqueued(),
            queue_depth=self.depth(),
            store=store,
            auth_failed=self.auth_failed,
        )
