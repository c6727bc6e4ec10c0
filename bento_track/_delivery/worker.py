"""The delivery worker: one daemon thread per client per process that drains
the capture inbox, encodes events once, moves them into the store, claims
batches (the store spends the request budget), retries, bisects rejected
batches, and reports through signals and stats. In sync mode the same steps
run in the caller's thread.

One code path for every store (`bento_track.stores.Store`): the in-process
memory store, or a durable one that several processes share. With a durable
store the worker drains the inbox at most every `GROUP_INTERVAL` seconds, so
captured events reach the store in grouped commits, and it polls the store
while idle, since other processes (or dead ones) leave events there too.

Threads: capture threads only `append` to `inbox` and read two ints (`held`,
`wake_at`); everything else here belongs to the worker thread (or, in sync
mode, to whoever holds `sync_lock`). The few counters capture threads touch
(drops, evictions) are updated under `progress`, a Condition also used to wake
`flush()` callers and producers blocked by the `block` overflow policy.
"""

from __future__ import annotations

import random
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .. import signals
from .._core.clock import Clock
from .._core.kinds import KINDS, Kind, body, kind_of
from .._core.records import BODY_OVERHEAD, BatchPolicy, Record
from .._internal import RateLimitedLog, library_section, logger
from .._transport import http as _http
from ..errors import APIError
from ..events import Event
from ..options import default
from ..stores import (
    UNNAMED,
    Account,
    Claim,
    Lease,
    Permit,
    Store,
    StoreError,
    StorePolicy,
    StoreStats,
)
from ..subscribers import SubscriberCommand, SubscriberUpsert, Update
from .encoding import decode_event, encode_event
from .sender import Outcome, Sender, Verdict

__all__ = ["UPDATES", "DeliveryStats", "Worker", "WorkerSettings"]

#: what the inbox holds besides events: encoded by their own `encode()`
UPDATES = (SubscriberUpsert, SubscriberCommand)
#: what the inbox holds
Queued = Event | Update

_NEVER = sys.maxsize
_IDLE_WAIT = None  # wait for events without a timeout
_RETRY_CAP = 30.0
#: real seconds between two moves of the inbox into a durable store: one
#: commit per group of events, and no event waits in memory much longer
GROUP_INTERVAL = 0.05
#: seconds between looks at a durable store while nothing of ours waits
#: (other processes' events, a dead process's leftovers)
POLL_INTERVAL = 0.5
#: seconds between looks while a flush waits for other processes
FLUSH_POLL = 0.02
#: sends in a row that raise something other than HTTP trouble (a module a
#: fork left half-imported, ...) before delivery here is declared broken
BROKEN_AFTER = 3

_batch_sent = signals.batch_sent
_batch_failed = signals.batch_failed
_event_dropped = signals.event_dropped
_send = signals.send

#: what each drop reason means, for the warning that says it
DROP_REASONS = {
    "invalid": "the event is invalid",
    "queue_full": "the queue is full (max_queue_size / max_queue_bytes); "
    "delivery is slower than capture or Bento is unreachable",
    "oversize": "the event alone is larger than a request may be",
    "unencodable": "the event cannot be encoded as JSON",
    "rejected": "Bento refused the event (400/422)",
    "shutdown": "captured after shutdown()",
    "broken": "delivery in this process is broken (see the error logged once)",
    # Counted elsewhere, and said there: `before_send` (the client's filter)
    # and a store that lost its file (`_refresh`).
    "filtered": "before_send returned None",
    "hook_error": "before_send raised or returned something else than an Event",
    "store_lost": "the store file was deleted or replaced under this process",
}
#: reasons said elsewhere: `disabled` is the user's choice, the default
#: client logs once why it is `not_configured`, and `broken` is said once
#: when found and again at shutdown
QUIET_REASONS = frozenset({"disabled", "not_configured", "broken"})


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


def _events(records: list[Record]) -> list[Event]:
    """The events among `records`, for signals (subscriber updates carry none)."""
    return [decode_event(r) for r in records if kind_of(r) is Kind.EVENT]


@dataclass
class _Job:
    """One request to make: a lease and the permit paid for it."""

    lease: Lease
    permit: Permit
    from_pending: bool


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
        self.progress = threading.Condition(threading.Lock())
        self.sync_lock = threading.Lock()
        self._wake = threading.Event()
        self._never = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.stopping = False
        #: real-time (time.monotonic) deadline that caps HTTP timeouts (shutdown)
        self.deadline: float | None = None
        # -- counters ----------------------------------------------------------
        self.drained = 0
        self.evicted = 0
        #: events enqueued here that are done with: delivered (by any
        #: process), rejected or dropped. The worker recomputes it from the
        #: store; capture threads add drops of events never stored.
        self.settled = 0
        #: the part of `settled` that never reached the store
        self.settled_local = 0
        #: records put into the store
        self.put_total = 0
        #: this process's events still in the store (as last read)
        self.outstanding = 0
        #: events left in a durable store when the worker stopped
        self.left_in_store: int | None = None
        #: of the rest, events written without an answer (may still arrive)
        self.left_unanswered = 0
        self.flush_target = 0
        self.sent = 0
        self.accepted = 0
        self.failed = 0
        self.rejected = 0
        self.retried = 0
        self.requests = 0
        #: subscriber upserts and commands delivered, by kind ("upsert", ...)
        self.updates_sent: dict[str, int] = {}
        #: requests by HTTP status, or "error" when none came back
        self.responses: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.receiver_errors = 0
        self.store_errors = 0
        #: this process's events the store lost (a deleted SQLite file)
        self.store_lost = 0
        self.drop_log = RateLimitedLog()
        self.last_success_at: float | None = None
        self.last_error_at: float | None = None
        self.last_error: str | None = None
        self.auth_failed = False
        #: why sending cannot work in this process (see `_send_raised`), or None
        self.broken: str | None = None
        # -- worker-only state -------------------------------------------------
        self._pending: list[Lease] = []  # bisection halves, next at the end
        #: encoded events a durable store could not take yet (oldest first)
        self._spill: list[Record] = []
        self._last_drain = float("-inf")  # real time (time.monotonic)
        self._drain_lock = threading.Lock()
        self._attempt = 0
        self._retry_at = 0.0
        self._raised_in_a_row = 0
        self._outage_since: float | None = None
        self._outage_warned = False

    # -- capture side ----------------------------------------------------------

    def poke(self) -> None:
        """Wake the worker (starting its thread on first use)."""
        # Until the worker publishes a new threshold, other captures need not
        # poke again: one `Event.set()` per wake-up, not one per event.
        self.wake_at = _NEVER
        if self._thread is None:
            self._start()
        self._wake.set()

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
            return len(self.inbox) + self.held - self.store_memory + self.outstanding
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
        with self.progress:
            self.dropped[reason] = self.dropped.get(reason, 0) + n
        if message is None and error is not None:
            message = str(error)
        if reason not in QUIET_REASONS:
            self._say_drop(reason, n, message, where)
        if _event_dropped.receivers:
            # Signals carry events; subscriber updates are counted and said.
            said = [e for e in events if isinstance(e, Event)]
            self.count_receiver_errors(
                _send(
                    _event_dropped,
                    self.owner,
                    events=said,
                    reason=reason,
                    error=error,
                    message=message,
                )
            )
        # Settled last, so a `flush()` returns after the drop was said.
        if queued:
            with self.progress:
                self.settled_local += n
                self.settled += n
                self.progress.notify_all()

    def _say_drop(
        self, reason: str, n: int, message: str | None, where: str | None
    ) -> None:
        what = DROP_REASONS.get(reason, reason)
        if reason == "invalid":
            # One line a minute per distinct problem, not per reason.
            self.drop_log.warn(
                f"invalid:{where}:{message}",
                n,
                "%s: event not tracked (invalid): %s",
                where or "track()",
                message,
            )
        elif message:
            self.drop_log.warn(
                reason, n, "events dropped (%s: %s): %s", reason, what, message
            )
        else:
            self.drop_log.warn(reason, n, "events dropped (%s: %s)", reason, what)

    def count_receiver_errors(self, n: int) -> None:
        """Add `n` receivers that raised to `stats().receiver_errors`."""
        if n:
            with self.progress:
                self.receiver_errors += n

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
        with self.progress:
            target = self.enqueued()
        deadline = time.monotonic() + timeout
        if self.settings.sync_mode:
            self.run_sync(timeout)
            return self.settled >= target
        with self.progress:
            if self.settled >= target:
                return True
            self.flush_target = max(self.flush_target, target)
        self.poke()
        with self.progress:
            while self.settled < target:
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
        self._wake.set()
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
                self._drain(force=True)
                self._note_left()
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
                        flushing = self.settled < self.flush_target
                        self._drain(force=flushing)
                        delay, wake_at, job = self._plan(flushing)
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
            self._drain(force=True)
            while self._pending:
                self.store.release(self._pending.pop())
            self._note_left()
            self.store.close()
        except Exception:
            logger.exception("bento_track: could not close the store cleanly")

    def _note_left(self) -> None:
        self._refresh()
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

    def run_sync(self, timeout: float) -> None:
        """Sync mode: run the worker's steps in this thread until the queue is
        empty or `timeout` seconds (of the injected clock) would be exceeded."""
        with self.sync_lock, library_section():
            deadline = self.clock.monotonic() + timeout
            while True:
                self._drain(force=True)
                delay, _, job = self._plan(True)
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
        self._wake.clear()
        if self.durable:
            # Any new event wakes us: the inbox moves to the store every
            # `GROUP_INTERVAL` whatever else waits (a backoff, the budget).
            wake_at = 1
        self.wake_at = wake_at
        changed = (
            len(self.inbox) >= wake_at
            or self.stopping
            or (not flushing and self.settled < self.flush_target)
        )
        if not changed:
            if not self.durable:
                self.clock.wait(self._wake, delay)
            else:
                # Other processes change the store too: look again soon, and
                # sooner while a flush waits on them.
                poll = FLUSH_POLL if flushing else POLL_INTERVAL
                if delay is None:
                    # Only other processes can change things: they act in
                    # real time, whatever clock this worker is given.
                    self._wake.wait(poll)
                else:  # a pause, the budget, a batch's age: this clock's time
                    self.clock.wait(self._wake, min(delay, poll))
        self.wake_at = _NEVER

    def _drain(self, force: bool = False) -> None:
        """Move the inbox into the store, encoding each event once. With a
        durable store, at most once per `GROUP_INTERVAL` (unless `force`):
        the first event after a quiet spell waits that long for company, so
        the store takes one commit per group rather than per event."""
        inbox = self.inbox
        if not inbox and not self._spill:
            return
        if self.durable and not force:
            # Real time, not the injected clock: this groups writes, it
            # decides nothing a test would steer.
            wait = self._last_drain + GROUP_INTERVAL - time.monotonic()
            if wait > 0 and len(inbox) < self.settings.max_batch_size:
                self.wake_at = _NEVER
                self._wake.clear()
                if not self.stopping:
                    self._wake.wait(wait)
        with self._drain_lock:
            self._last_drain = time.monotonic()
            self._drain_now()

    def _drain_now(self) -> None:
        inbox = self.inbox
        n = len(inbox)
        records: list[Record] = self._spill
        self._spill = []
        if n:
            # Pop and count under the lock so `enqueued()` (read under it by
            # `flush`) never misses events between the inbox and the store.
            popleft = inbox.popleft
            with self.progress:
                try:
                    events = [popleft() for _ in range(n)]
                except IndexError:  # a drop_oldest capture evicted some meanwhile
                    events = []
                    while inbox:
                        try:
                            events.append(popleft())
                        except IndexError:
                            break
                self.drained += len(events)
                if self.durable:
                    # In flight between the inbox and the store: still held.
                    self.held += len(events)
            records = records + self._encode(events)
        if not records:
            self._update_held()
            return
        try:
            dropped = self.store.put(records)
        except Exception as exc:
            self._store_failed(records, exc)
            return
        self.put_total += len(records)
        if dropped:
            # They were put, and left the store: `_refresh` settles them,
            # after the drop was said.
            self.drop(_events(dropped), "queue_full", count=len(dropped), queued=False)
        self._update_held()
        self._refresh()

    def _encode(self, events: list[Queued]) -> list[Record]:
        limit = self.policy.max_bytes - BODY_OVERHEAD - 1  # one event alone
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
        if self.durable:
            with self.progress:
                self.held -= 1
        self.drop([event], reason, queued=True, error=error, message=message)

    def _store_trouble(self, exc: Exception) -> None:
        """A store operation other than a write failed: counted, logged at
        most once a minute (no traceback: the store's message says why)."""
        self.store_errors += 1
        self.last_error = f"store: {exc}"
        self.last_error_at = self.clock.time()
        self.drop_log.warn(
            "store_trouble", 1, "the store %s: %s", self.store.location, exc
        )

    def _store_failed(self, records: list[Record], exc: Exception) -> None:
        """A durable store refused a write (disk full, locked too long, ...):
        keep the records in memory, bounded like the inbox, and try again at
        the next drain. Counted and logged."""
        self.store_errors += 1
        self.last_error = f"store: {exc}"
        self.last_error_at = self.clock.time()
        self.drop_log.warn(
            "store_error",
            len(records),
            "could not write to the store %s (%s); %d events wait in memory "
            "and are written again shortly",
            self.store.location,
            exc,
            len(records),
        )
        limit = self.settings.max_queue_size
        if len(records) > limit:
            if self.settings.overflow == "drop_oldest":
                over, records = records[:-limit], records[-limit:]
            else:
                records, over = records[:limit], records[limit:]
            with self.progress:
                self.held -= len(over)
            self.drop(_events(over), "queue_full", count=len(over), queued=True)
        self._spill = records
        self._update_held()

    def _update_held(self) -> None:
        memory = self.store.memory_held()
        held = memory + len(self._spill)
        with self.progress:
            self.held = held
            self.store_memory = memory
            self.progress.notify_all()

    def _refresh(self) -> None:
        """Recompute `settled` from the store: this process's events that
        left it (delivered or dropped by any process) are settled."""
        try:
            out = self.store.outstanding()
            lost = self.store.lost()
        except Exception as exc:
            self.last_error = f"store: {exc}"
            return
        with self.progress:
            if lost > self.store_lost:
                # Settled below (they left the store), but lost, not sent:
                # the store said so when it noticed.
                self.dropped["store_lost"] = (
                    self.dropped.get("store_lost", 0) + lost - self.store_lost
                )
                self.store_lost = lost
            self.outstanding = out
            self.settled = self.settled_local + self.put_total - out
            self.progress.notify_all()

    def _plan(self, flushing: bool) -> tuple[float | None, int, _Job | None]:
        """(seconds to wait, inbox length that should wake us, or a request
        to make now); a delay of None means nothing is waiting to be sent."""
        if self.auth_failed:
            return None, _NEVER, None
        if self.broken is not None:
            self._drop_broken()
            return None, 1, None  # wake for new events: they are dropped too
        now = self.clock.monotonic()
        backoff = self._retry_at - now
        if self._pending:
            if backoff > 0:
                return backoff, _NEVER, None
            permit, wait = self.store.acquire()
            if permit is None:
                return wait, _NEVER, None
            return 0.0, _NEVER, _Job(self._pending.pop(), permit, True)
        if backoff > 0:
            if self.durable and flushing:
                self._refresh()  # another process may deliver meanwhile
            return backoff, _NEVER, None
        claim = self.store.claim(flushing)
        if claim.lease is not None:
            permit = claim.lease.permit
            return (
                0.0,
                _NEVER,
                _Job(claim.lease, 0 if permit is None else permit, False),
            )
        if self.durable:
            if flushing or self.outstanding:
                # Another process may have delivered ours: `queue_depth` and
                # `flush()` follow within a poll, not at our next write.
                self._refresh()
            # Grouped draining decides when the inbox moves.
            return claim.delay, 1, None
        return self._memory_wake(claim, flushing)

    def _memory_wake(
        self, claim: Claim, flushing: bool
    ) -> tuple[float | None, int, None]:
        delay = claim.delay
        if delay is None:
            return _IDLE_WAIT, 1, None
        count = claim.count
        if flushing or claim.budget_bound:
            return delay, _NEVER, None  # more events cannot make us send sooner
        # Waiting for the batch to age: wake early if the inbox can fill it.
        need = self.settings.max_batch_size - count
        if count:
            per_event = claim.nbytes / count
            room = self.settings.max_batch_bytes - BODY_OVERHEAD - claim.nbytes
            need = min(need, int(room / per_event) + 1)
        return delay, max(1, need), None

    # -- one request -----------------------------------------------------------

    def _send(self, job: _Job) -> None:
        lease = job.lease
        batch = lease.records
        kind, payload, items = body(batch)
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
                self._put_back(lease, job.from_pending)
                self._send_raised(exc)
                return
        finally:
            self.store.complete(job.permit)
        self._raised_in_a_row = 0
        self.requests += 1
        answer = "error" if outcome.status is None else str(outcome.status)
        self.responses[answer] = self.responses.get(answer, 0) + 1
        self._handle(lease, outcome, job.from_pending)

    def _send_raised(self, exc: Exception) -> None:
        """`Sender.post` raised: not an answer or a network failure (it maps
        those) but trouble of this process, such as a module a fork left
        half-imported. Tried again with backoff; `BROKEN_AFTER` in a row and
        delivery here is broken: said once, loudly, and this process's events
        are dropped as `broken` (a durable store keeps them for the other
        processes) instead of being retried forever."""
        redact = self.sender.config.redact if self.sender is not None else str
        cause = redact(f"{type(exc).__name__}: {exc}")
        self._raised_in_a_row += 1
        self.last_error = f"sending raised {cause}"
        self.last_error_at = self.clock.time()
        if self._raised_in_a_row < BROKEN_AFTER:
            self._retry_at = self.clock.monotonic() + _http.backoff_delay(
                self._raised_in_a_row,
                base=self.settings.retry_base_delay,
                cap=_RETRY_CAP,
                rand=self.rand,
            )
            return
        self.broken = cause
        self.last_error = f"delivery in this process is broken: {cause}"
        where = (
            f"its events wait in the store {self.store.location} for others"
            if self.durable
            else "its events are dropped (stats().dropped['broken']), and so "
            "are those captured from now on"
        )
        logger.error(
            "bento_track: delivery in this process is broken: sending raised %s "
            "%d times in a row (a fork during an import can leave a module "
            "half-initialized; restart the process). This process sends "
            "nothing more: %s.\n%s",
            cause,
            self._raised_in_a_row,
            where,
            redact("".join(traceback.format_exception(exc)).rstrip()),
        )
        with self.progress:
            self.progress.notify_all()  # a waiting flush() reconsiders

    def _drop_broken(self) -> None:
        """Delivery here is broken: drop the events of the memory store (what
        a durable store holds stays there for other processes)."""
        backend = self.backend
        if self.durable or backend is None:
            return
        records: list[Record] = []
        while self._pending:
            lease = self._pending.pop()
            self.store.reject(lease)
            records += lease.records
        records += backend.drop_oldest(len(backend))
        if records:
            self._update_held()
            self.drop(
                _events(records),
                "broken",
                count=len(records),
                queued=False,
                message=self.broken,
            )
            self._refresh()  # settled last, once the drop was said

    def _put_back(self, lease: Lease, from_pending: bool) -> None:
        if from_pending:
            self._pending.append(lease)
        else:
            self.store.release(lease)

    def _handle(self, lease: Lease, outcome: Outcome, from_pending: bool) -> None:
        batch = lease.records
        verdict = outcome.verdict
        if verdict is Verdict.DELIVERED:
            self._delivered(lease, outcome)
            return
        error = outcome.error
        assert error is not None
        self.last_error_at = self.clock.time()
        self.last_error = str(error)
        now = self.clock.monotonic()
        if verdict is Verdict.RATE_LIMITED or verdict is Verdict.RETRY:
            self._put_back(lease, from_pending)
            self.retried += 1
            self._attempt += 1
            backoff = _http.backoff_delay(
                self._attempt,
                base=self.settings.retry_base_delay,
                cap=_RETRY_CAP,
                rand=self.rand,
            )
            if verdict is Verdict.RATE_LIMITED:
                pause = _http.clamp_retry_after(error.retry_after)
                self.store.pause(backoff if pause is None else pause)
            else:
                self._retry_at = now + backoff
                if self._outage_since is None:
                    self._outage_since = now
                elif (
                    now - self._outage_since > self.settings.max_retry_time
                    and not self._outage_warned
                ):
                    self._outage_warned = True
                    logger.warning(
                        "bento_track: delivery has failed for %.0f s (%s); keeping "
                        "%d events and retrying every %.0f s or so; new events are "
                        "dropped (queue_full) once the queue is full",
                        now - self._outage_since,
                        error,
                        self.depth(),
                        _RETRY_CAP,
                    )
            self._signal_failed(batch, error, True)
        elif verdict is Verdict.REJECTED:
            # State first, signals last: a receiver must never see (or lose)
            # a batch half-handled. Both halves stay leased by this process.
            if len(batch) > 1:
                first, second = self.store.split(lease)
                self._pending.append(second)
                self._pending.append(first)
                self._signal_failed(batch, error, True)
            else:
                self.store.reject(lease)
                self.rejected += 1
                self._update_held()
                self._signal_failed(batch, error, False)
                self.drop(
                    _events(batch),
                    "rejected",
                    count=len(batch),
                    queued=False,
                    error=error,
                )
                self._refresh()  # settled last, once the drop was said
        else:  # STOP: bad credentials or URL; keep the events, say so once
            self._put_back(lease, from_pending)
            if not self.auth_failed:
                self.auth_failed = True
                logger.error(
                    "bento_track: Bento refused our requests (%s); delivery is "
                    "stopped and %d events are kept in %s. Check site_uuid, "
                    "publishable_key, secret_key and base_url",
                    error,
                    self.depth(),
                    "the store" if self.durable else "memory",
                )
            with self.progress:
                self.progress.notify_all()
            self._signal_failed(batch, error, False)

    def _delivered(self, lease: Lease, outcome: Outcome) -> None:
        batch = lease.records
        n = len(batch)
        self.store.ack(lease)
        kind = kind_of(batch[0])
        if kind is not Kind.EVENT:  # counted apart; Bento's counts are rows
            self.updates_sent[kind.value] = self.updates_sent.get(kind.value, 0) + n
            self._settled_ok()
            return
        self.sent += n
        self.accepted += outcome.accepted
        self.failed += outcome.failed
        self._settled_ok(refresh=False)
        if _batch_sent.receivers:
            self.count_receiver_errors(
                _send(
                    _batch_sent,
                    self.owner,
                    events=_events(batch),
                    accepted=outcome.accepted,
                    failed=outcome.failed,
                )
            )
        self._refresh()

    def _settled_ok(self, refresh: bool = True) -> None:
        """A batch was accepted: the outage (if any) is over."""
        self.last_success_at = self.clock.time()
        self._attempt = 0
        self._retry_at = 0.0
        self._outage_since = None
        self._outage_warned = False
        self._update_held()
        if refresh:
            self._refresh()

    def _signal_failed(
        self, batch: list[Record], error: APIError, will_retry: bool
    ) -> None:
        if _batch_failed.receivers and kind_of(batch[0]) is Kind.EVENT:
            self.count_receiver_errors(
                _send(
                    _batch_failed,
                    self.owner,
                    events=_events(batch),
                    error=error,
                    will_retry=will_retry,
                )
            )

    # -- stats -----------------------------------------------------------------

    def snapshot(self) -> DeliveryStats:
        """A `DeliveryStats` of this worker's counters and its store."""
        try:
            store: StoreStats | None = self.store.stats()
            paused = store.paused_until if store else None
        except Exception:  # a store that cannot answer leaves its figures out
            store = None
            paused = None
        with self.progress:
            dropped = dict(self.dropped)
        return DeliveryStats(
            enqueued=self.enqueued(),
            sent=self.sent,
            accepted=self.accepted,
            failed=self.failed,
            rejected=self.rejected,
            retried=self.retried,
            requests=self.requests,
            dropped=dropped,
            queue_depth=self.depth(),
            last_success_at=self.last_success_at,
            last_error_at=self.last_error_at,
            last_error=self.last_error,
            paused_until=paused,
            auth_failed=self.auth_failed,
            receiver_errors=self.receiver_errors,
            store=store,
            store_errors=self.store_errors,
            responses=dict(self.responses),
            updates_sent=dict(self.updates_sent),
        )
