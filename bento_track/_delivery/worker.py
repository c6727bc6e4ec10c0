"""The delivery worker: one daemon thread per client per process that drains
the capture inbox, encodes events once, batches them, spends the request
budget, retries, bisects rejected batches, and reports through signals and
stats. In sync mode the same steps run in the caller's thread.

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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .. import signals
from .._internal import RateLimitedLog, library_section, logger
from .._transport import http as _http
from ..errors import APIError
from ..events import Event
from ..queues import QueueBackend
from .batcher import (
    BODY_OVERHEAD,
    BatchPolicy,
    Record,
    body,
    decode_event,
    encode_event,
)
from .budget import RequestBudget
from .clock import Clock
from .sender import Outcome, Sender, Verdict

__all__ = ["DeliveryStats", "Worker", "WorkerSettings"]

_NEVER = sys.maxsize
_IDLE_WAIT = None  # wait for events without a timeout
_RETRY_CAP = 30.0

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
}
#: reasons said elsewhere: `disabled` is the user's choice, and the default
#: client logs once why it is `not_configured`
QUIET_REASONS = frozenset({"disabled", "not_configured"})


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
        dropped: events that will never be delivered, by reason.
        queue_depth: events waiting (inbox, queue and in flight).
        last_success_at / last_error_at: epoch seconds, or None.
        last_error: the last error message (secrets redacted), or None.
        paused_until: epoch seconds until which sending is paused (429), or None.
        auth_failed: Bento refused our credentials (401/403/404); sending stopped.
        receiver_errors: calls to receivers of our signals that raised
            (logged and ignored).
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


@dataclass(frozen=True)
class WorkerSettings:
    """Validated delivery options (see `Client` for their meaning)."""

    max_batch_size: int = 1000
    max_batch_bytes: int = 1_048_576
    flush_interval: float = 5.0
    requests_per_minute: int = 100
    rate_window: float = 60.0
    max_queue_size: int = 10_000
    max_queue_bytes: int = 10 * 1_048_576
    overflow: str = "drop_newest"
    block_timeout: float = 0.1
    max_retry_time: float = 300.0
    sync_timeout: float = 10.0
    retry_base_delay: float = 0.5
    sync_mode: bool = False


def _events(records: list[Record]) -> list[Event]:
    return [decode_event(r) for r in records]


class Worker:
    """Delivery for one client in one process. Build a new one after a fork."""

    def __init__(
        self,
        owner: object,
        settings: WorkerSettings,
        backend: QueueBackend,
        sender: Sender | None,
        clock: Clock,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.owner = owner  # the Client: the sender of every signal
        self.settings = settings
        self.backend = backend
        self.sender = sender
        self.clock = clock
        self.rand = rand
        self.policy = BatchPolicy(
            settings.max_batch_size, settings.max_batch_bytes, settings.flush_interval
        )
        self.budget = RequestBudget(
            settings.requests_per_minute, settings.rate_window, clock
        )
        # -- shared with capture threads -------------------------------------
        self.inbox: deque[Event] = deque()
        #: events the worker holds (queue backend, bisection work, in flight)
        self.held = 0
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
        self.settled = 0
        self.flush_target = 0
        self.sent = 0
        self.accepted = 0
        self.failed = 0
        self.rejected = 0
        self.retried = 0
        self.requests = 0
        self.dropped: dict[str, int] = {}
        self.receiver_errors = 0
        self.drop_log = RateLimitedLog()
        self.last_success_at: float | None = None
        self.last_error_at: float | None = None
        self.last_error: str | None = None
        self.auth_failed = False
        # -- worker-only state -------------------------------------------------
        self._pending: list[list[Record]] = []  # bisection halves, next at the end
        self._inflight_bytes = 0
        self._oldest_at: float | None = None
        self._attempt = 0
        self._retry_at = 0.0
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
        return self.drained + self.evicted + len(self.inbox)

    def depth(self) -> int:
        return len(self.inbox) + self.held

    def drop(
        self,
        events: list[Event],
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
            self.count_receiver_errors(
                _send(
                    _event_dropped,
                    self.owner,
                    events=events,
                    reason=reason,
                    error=error,
                    message=message,
                )
            )
        # Settled last, so a `flush()` returns after the drop was said.
        if queued:
            with self.progress:
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
            thread.join(max(0.0, timeout))
        if (thread is None or not thread.is_alive()) and self.sender is not None:
            self.sender.close()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop --------------------------------------------------------------

    def _run(self) -> None:
        with library_section():
            try:
                while not self.stopping:
                    try:
                        self._drain()
                        flushing = self.settled < self.flush_target
                        delay, wake_at = self._plan(flushing)
                        if delay == 0.0:
                            self._send_one()
                        else:
                            self._sleep(delay, wake_at, flushing)
                    except Exception:  # never let the worker die
                        logger.exception(
                            "bento_track: delivery worker error (continuing)"
                        )
                        self.clock.wait(self._never, 1.0)
            finally:
                if self.sender is not None:
                    self.sender.close()

    def run_sync(self, timeout: float) -> None:
        """Sync mode: run the worker's steps in this thread until the queue is
        empty or `timeout` seconds (of the injected clock) would be exceeded."""
        with self.sync_lock, library_section():
            deadline = self.clock.monotonic() + timeout
            while True:
                self._drain()
                delay, _ = self._plan(True)
                if delay is None:
                    return
                if delay == 0.0:
                    self._send_one()
                    continue
                if self.clock.monotonic() + delay > deadline:
                    return
                self.clock.wait(self._never, delay)

    def _sleep(self, delay: float | None, wake_at: int, flushing: bool) -> None:
        # Clear, publish the threshold, then re-check what may have changed
        # since planning, so a wake-up between the two is never lost.
        self._wake.clear()
        self.wake_at = wake_at
        changed = (
            len(self.inbox) >= wake_at
            or self.stopping
            or (not flushing and self.settled < self.flush_target)
        )
        if not changed:
            self.clock.wait(self._wake, delay)
        self.wake_at = _NEVER

    def _drain(self) -> None:
        """Move the inbox into the backend, encoding each event once, then
        enforce the queue's byte bound (and the count bound after a
        `drop_oldest` overshoot)."""
        inbox = self.inbox
        n = len(inbox)
        if not n:
            return
        # Pop and count under the lock so `enqueued()` (read under it by
        # `flush`) never misses events that are between the inbox and the queue.
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
        records: list[Record] = []
        limit = self.policy.max_bytes - BODY_OVERHEAD - 1  # one event alone
        append = records.append
        for event in events:
            try:
                data = encode_event(event)
            except Exception as exc:  # validation let it through: it goes alone
                self.drop([event], "unencodable", queued=True, error=exc)
                continue
            if len(data) <= limit:
                append(data)
            else:
                self.drop(
                    [event],
                    "oversize",
                    queued=True,
                    message=f"{event.type!r} is {len(data)} bytes encoded; a "
                    f"request holds at most {limit}",
                )
        if records:
            self.backend.put(records)
            self.held += len(records)
            if self._oldest_at is None:
                self._oldest_at = self.clock.monotonic()
        self._enforce_bounds()

    def _enforce_bounds(self) -> None:
        settings = self.settings
        backend = self.backend
        excess_bytes = backend.nbytes + self._inflight_bytes - settings.max_queue_bytes
        excess_count = self.held - settings.max_queue_size
        if excess_bytes <= 0 and excess_count <= 0:
            return
        oldest = settings.overflow == "drop_oldest"
        dropped: list[Record] = []
        if excess_count > 0 and oldest:
            dropped += backend.drop_oldest(excess_count)
        while backend.nbytes + self._inflight_bytes > settings.max_queue_bytes and len(
            backend
        ):
            step = max(1, len(backend) // 100)
            dropped += (
                backend.drop_oldest(step) if oldest else backend.drop_newest(step)
            )
        if dropped:
            self.held -= len(dropped)
            self.drop(_events(dropped), "queue_full", queued=True)

    def _plan(self, flushing: bool) -> tuple[float | None, int]:
        """(seconds to wait before sending, inbox length that should wake us);
        a delay of None means nothing is waiting to be sent."""
        if self.auth_failed:
            return None, _NEVER
        backend = self.backend
        count = len(backend)
        if not self._pending and not count:
            self._oldest_at = None
            return _IDLE_WAIT, 1
        now = self.clock.monotonic()
        hold = max(self.budget.delay(), self._retry_at - now)
        if self._pending or flushing:
            due: float | None = 0.0
        else:
            due = self.policy.due_in(count, backend.nbytes, self._oldest_at, now)
        delay = max(hold, due or 0.0)
        if delay <= 0.0:
            return 0.0, _NEVER
        if hold > 0.0 or flushing:
            return delay, _NEVER  # more events cannot make us send sooner
        # Waiting for the batch to age: wake early if the inbox can fill it.
        need = self.settings.max_batch_size - count
        if count:
            per_event = backend.nbytes / count
            room = self.settings.max_batch_bytes - BODY_OVERHEAD - backend.nbytes
            need = min(need, int(room / per_event) + 1)
        return delay, max(1, need)

    # -- one request -----------------------------------------------------------

    def _send_one(self) -> None:
        from_pending = bool(self._pending)
        if from_pending:
            batch = self._pending.pop()
        else:
            batch = self.backend.get_batch(
                self.settings.max_batch_size,
                self.settings.max_batch_bytes - BODY_OVERHEAD,
            )
            if not batch:
                return
        payload = body(batch)
        self._inflight_bytes = len(payload)
        timeout = None
        if self.deadline is not None:
            timeout = self.deadline - time.monotonic()
        assert self.sender is not None
        try:
            outcome = self.sender.post(payload, len(batch), timeout=timeout)
        finally:
            self._inflight_bytes = 0
            self.budget.record()
        self.requests += 1
        self._handle(batch, outcome, from_pending)

    def _put_back(self, batch: list[Record], from_pending: bool) -> None:
        if from_pending:
            self._pending.append(batch)
        else:
            self.backend.requeue(batch)

    def _handle(
        self, batch: list[Record], outcome: Outcome, from_pending: bool
    ) -> None:
        verdict = outcome.verdict
        if verdict is Verdict.DELIVERED:
            self._delivered(batch, outcome)
            return
        error = outcome.error
        assert error is not None
        self.last_error_at = self.clock.time()
        self.last_error = str(error)
        now = self.clock.monotonic()
        if verdict is Verdict.RATE_LIMITED or verdict is Verdict.RETRY:
            self._put_back(batch, from_pending)
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
                self.budget.pause(backoff if pause is None else pause)
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
            # a batch half-handled.
            if len(batch) > 1:
                half = len(batch) // 2
                self._pending.append(batch[half:])
                self._pending.append(batch[:half])
                self._signal_failed(batch, error, True)
            else:
                self.held -= 1
                self.rejected += 1
                self._signal_failed(batch, error, False)
                self.drop(_events(batch), "rejected", queued=True, error=error)
        else:  # STOP: bad credentials or URL; keep the events, say so once
            self._put_back(batch, from_pending)
            if not self.auth_failed:
                self.auth_failed = True
                logger.error(
                    "bento_track: Bento refused our requests (%s); delivery is "
                    "stopped and %d events are kept in memory. Check site_uuid, "
                    "publishable_key, secret_key and base_url",
                    error,
                    self.depth(),
                )
            with self.progress:
                self.progress.notify_all()
            self._signal_failed(batch, error, False)

    def _delivered(self, batch: list[Record], outcome: Outcome) -> None:
        n = len(batch)
        self.held -= n
        self.sent += n
        self.accepted += outcome.accepted
        self.failed += outcome.failed
        self.last_success_at = self.clock.time()
        self._attempt = 0
        self._retry_at = 0.0
        self._outage_since = None
        self._outage_warned = False
        if not self.backend and not self._pending:
            self._oldest_at = None
        elif not self._pending:
            self._oldest_at = self.clock.monotonic()
        with self.progress:
            self.settled += n
            self.progress.notify_all()
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

    def _signal_failed(
        self, batch: list[Record], error: APIError, will_retry: bool
    ) -> None:
        if _batch_failed.receivers:
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
        paused = self.budget.paused_until - self.clock.monotonic()
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
            paused_until=self.clock.time() + paused if paused > 0 else None,
            auth_failed=self.auth_failed,
            receiver_errors=self.receiver_errors,
        )
