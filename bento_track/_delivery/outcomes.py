"""What the worker does with the end of one request: count a delivery,
retry with backoff (and say a long outage once), bisect a rejected batch
down to the events Bento refuses, stop on bad credentials, and declare
delivery here broken when sending itself keeps raising.

State first, signals last: a receiver never sees (or loses) a batch
half-handled, and `flush()` returns only after a drop was said."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING

from .. import signals
from .._core.kinds import Kind, kind_of
from .._core.records import Record
from .._internal import logger
from .._transport import http as _http
from ..errors import APIError
from ..stores import Lease
from .encoding import decode_events
from .sender import Outcome, Verdict

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ["BROKEN_AFTER", "RETRY_CAP", "Outcomes"]

#: the longest backoff between two tries, in seconds
RETRY_CAP = 30.0
#: sends in a row that raise something other than HTTP trouble (a module a
#: fork left half-imported, ...) before delivery here is declared broken
BROKEN_AFTER = 3

_batch_sent = signals.batch_sent
_batch_failed = signals.batch_failed
_send = signals.send


class Outcomes:
    """One worker's answers and retries (worker thread only): the bisection
    halves still to send, and the backoff and outage state."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        #: bisection halves, next at the end; leased by this process
        self.pending: list[Lease] = []
        #: no request before this (the worker's clock's monotonic seconds)
        self.retry_at = 0.0
        self._attempt = 0
        self._raised_in_a_row = 0
        self._outage_since: float | None = None
        self._outage_warned = False

    def put_back(self, lease: Lease, from_pending: bool) -> None:
        """Return an unsent batch: a bisection half to `pending`, else to
        the store for any process to claim."""
        if from_pending:
            self.pending.append(lease)
        else:
            self.worker.store.release(lease)

    def handle(self, lease: Lease, outcome: Outcome, from_pending: bool) -> None:
        """Count and act on Bento's answer (or the network's failure) to the
        request that carried `lease`."""
        worker = self.worker
        counts = worker.counts
        self._raised_in_a_row = 0
        counts.requests += 1
        answer = "error" if outcome.status is None else str(outcome.status)
        counts.responses[answer] = counts.responses.get(answer, 0) + 1
        verdict = outcome.verdict
        if verdict is Verdict.DELIVERED:
            self._delivered(lease, outcome)
            return
        error = outcome.error
        assert error is not None
        counts.error(str(error), worker.clock.time())
        if verdict is Verdict.RATE_LIMITED or verdict is Verdict.RETRY:
            self._retry(lease, from_pending, verdict, error, worker.clock.monotonic())
        elif verdict is Verdict.REJECTED:
            self._rejected(lease, error)
        else:  # STOP: bad credentials or URL
            self._stopped(lease, from_pending, error)

    def _retry(
        self,
        lease: Lease,
        from_pending: bool,
        verdict: Verdict,
        error: APIError,
        now: float,
    ) -> None:
        worker = self.worker
        self.put_back(lease, from_pending)
        worker.counts.retried += 1
        self._attempt += 1
        backoff = _http.backoff_delay(
            self._attempt,
            base=worker.settings.retry_base_delay,
            cap=RETRY_CAP,
            rand=worker.rand,
        )
        if verdict is Verdict.RATE_LIMITED:
            pause = _http.clamp_retry_after(error.retry_after)
            worker.store.pause(backoff if pause is None else pause)
        else:
            self.retry_at = now + backoff
            if self._outage_since is None:
                self._outage_since = now
            elif (
                now - self._outage_since > worker.settings.max_retry_time
                and not self._outage_warned
            ):
                self._outage_warned = True
                logger.warning(
                    "bento_track: delivery has failed for %.0f s (%s); keeping "
                    "%d events and retrying every %.0f s or so; new events are "
                    "dropped (queue_full) once the queue is full",
                    now - self._outage_since,
                    error,
                    worker.depth(),
                    RETRY_CAP,
                )
        self._signal_failed(lease.records, error, True)

    def _rejected(self, lease: Lease, error: APIError) -> None:
        worker = self.worker
        batch = lease.records
        # Both halves stay leased by this process.
        if len(batch) > 1:
            first, second = worker.store.split(lease)
            self.pending.append(second)
            self.pending.append(first)
            self._signal_failed(batch, error, True)
            return
        worker.store.reject(lease)
        worker.counts.rejected += 1
        worker.update_held()
        self._signal_failed(batch, error, False)
        worker.drop(
            decode_events(batch),
            "rejected",
            count=len(batch),
            queued=False,
            error=error,
        )
        worker.ledger.refresh()  # settled last, once the drop was said

    def _stopped(self, lease: Lease, from_pending: bool, error: APIError) -> None:
        """Bad credentials or URL: keep the events, say so once."""
        worker = self.worker
        self.put_back(lease, from_pending)
        if not worker.auth_failed:
            worker.auth_failed = True
            logger.error(
                "bento_track: Bento refused our requests (%s); delivery is "
                "stopped and %d events are kept in %s. Check site_uuid, "
                "publishable_key, secret_key and base_url",
                error,
                worker.depth(),
                "the store" if worker.durable else "memory",
            )
        with worker.progress:
            worker.progress.notify_all()
        self._signal_failed(lease.records, error, False)

    def _delivered(self, lease: Lease, outcome: Outcome) -> None:
        worker = self.worker
        counts = worker.counts
        batch = lease.records
        n = len(batch)
        worker.store.ack(lease)
        kind = kind_of(batch[0])
        if kind is not Kind.EVENT:  # counted apart; Bento's counts are rows
            counts.updates_sent[kind.value] = counts.updates_sent.get(kind.value, 0) + n
            self._settled_ok()
            return
        counts.sent += n
        counts.accepted += outcome.accepted
        counts.failed += outcome.failed
        self._settled_ok(refresh=False)
        if _batch_sent.receivers:
            worker.drops.count_receiver_errors(
                _send(
                    _batch_sent,
                    worker.owner,
                    events=decode_events(batch),
                    accepted=outcome.accepted,
                    failed=outcome.failed,
                )
            )
        worker.ledger.refresh()

    def _settled_ok(self, refresh: bool = True) -> None:
        """A batch was accepted: the outage (if any) is over."""
        worker = self.worker
        worker.counts.last_success_at = worker.clock.time()
        self._attempt = 0
        self.retry_at = 0.0
        self._outage_since = None
        self._outage_warned = False
        worker.update_held()
        if refresh:
            worker.ledger.refresh()

    def _signal_failed(
        self, batch: list[Record], error: APIError, will_retry: bool
    ) -> None:
        if _batch_failed.receivers and kind_of(batch[0]) is Kind.EVENT:
            worker = self.worker
            worker.drops.count_receiver_errors(
                _send(
                    _batch_failed,
                    worker.owner,
                    events=decode_events(batch),
                    error=error,
                    will_retry=will_retry,
                )
            )

    def raised(self, exc: Exception) -> None:
        """`Sender.post` raised: not an answer or a network failure (it maps
        those) but trouble of this process, such as a module a fork left
        half-imported. Tried again with backoff; `BROKEN_AFTER` in a row and
        delivery here is broken: said once, loudly, and this process's events
        are dropped as `broken` (a durable store keeps them for the other
        processes) instead of being retried forever."""
        worker = self.worker
        redact = worker.sender.config.redact if worker.sender is not None else str
        cause = redact(f"{type(exc).__name__}: {exc}")
        self._raised_in_a_row += 1
        worker.counts.error(f"sending raised {cause}", worker.clock.time())
        if self._raised_in_a_row < BROKEN_AFTER:
            self.retry_at = worker.clock.monotonic() + _http.backoff_delay(
                self._raised_in_a_row,
                base=worker.settings.retry_base_delay,
                cap=RETRY_CAP,
                rand=worker.rand,
            )
            return
        worker.broken = cause
        worker.counts.last_error = f"delivery in this process is broken: {cause}"
        where = (
            f"its events wait in the store {worker.store.location} for others"
            if worker.durable
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
        with worker.progress:
            worker.progress.notify_all()  # a waiting flush() reconsiders

    def drop_broken(self) -> None:
        """Delivery here is broken: drop the events of the memory store (what
        a durable store holds stays there for other processes)."""
        worker = self.worker
        backend = worker.backend
        if worker.durable or backend is None:
            return
        records: list[Record] = []
        while self.pending:
            lease = self.pending.pop()
            worker.store.reject(lease)
            records += lease.records
        records += backend.drop_oldest(len(backend))
        if records:
            worker.update_held()
            worker.drop(
                decode_events(records),
                "broken",
                count=len(records),
                queued=False,
                message=worker.broken,
            )
            worker.ledger.refresh()  # settled last, once the drop was said
