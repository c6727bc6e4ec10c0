"""Drops: counting, saying (rate-limited) and signalling the events that will
never be delivered, and counting signal receivers that raised.

Capture threads drop too (invalid, queue full, after shutdown), so every
count here is taken under the worker's `progress` lock."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .. import signals
from .._internal import RateLimitedLog
from ..events import Event
from ..subscribers import Update
from .stats import Counters

__all__ = ["DROP_REASONS", "QUIET_REASONS", "Drops"]

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
    # and a store that lost its file (`Ledger.refresh`).
    "filtered": "before_send returned None",
    "hook_error": "before_send raised or returned something else than an Event",
    "store_lost": "the store file was deleted or replaced under this process",
}
#: reasons said elsewhere: `disabled` is the user's choice, the default
#: client logs once why it is `not_configured`, and `broken` is said once
#: when found and again at shutdown
QUIET_REASONS = frozenset({"disabled", "not_configured", "broken"})


class Drops:
    """One worker's account of lost events: `counts.dropped` by reason, one
    warning a minute per reason (`log`, shared with the worker's other
    rate-limited warnings), and the `event_dropped` signal."""

    def __init__(
        self, owner: object, counts: Counters, progress: threading.Condition
    ) -> None:
        self.owner = owner  # the Client: the sender of every signal
        self.counts = counts
        self.progress = progress
        self.log = RateLimitedLog()

    def report(
        self,
        events: Sequence[Event | Update],
        reason: str,
        n: int,
        error: Exception | None = None,
        message: str | None = None,
        where: str | None = None,
    ) -> None:
        """Count, log (rate-limited) and signal `n` dropped events (`events`
        are those there are: an invalid event was never built)."""
        counts = self.counts
        with self.progress:
            counts.dropped[reason] = counts.dropped.get(reason, 0) + n
        if message is None and error is not None:
            message = str(error)
        if reason not in QUIET_REASONS:
            self.say(reason, n, message, where)
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

    def say(self, reason: str, n: int, message: str | None, where: str | None) -> None:
        """Warn that `n` events were dropped for `reason`, at most once a
        minute per reason (per distinct problem for invalid events)."""
        what = DROP_REASONS.get(reason, reason)
        if reason == "invalid":
            # One line a minute per distinct problem, not per reason.
            self.log.warn(
                f"invalid:{where}:{message}",
                n,
                "%s: event not tracked (invalid): %s",
                where or "track()",
                message,
            )
        elif message:
            self.log.warn(
                reason, n, "events dropped (%s: %s): %s", reason, what, message
            )
        else:
            self.log.warn(reason, n, "events dropped (%s: %s)", reason, what)

    def count_receiver_errors(self, n: int) -> None:
        """Add `n` receivers that raised to `stats().receiver_errors`."""
        if n:
            with self.progress:
                self.counts.receiver_errors += n
