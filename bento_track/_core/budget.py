"""The request budget: at most `limit` requests in any `window` seconds, and a
global pause after a 429.

Bento (and the emulator) count requests in a sliding window measured when a
request *arrives*. We cannot see arrival times, but we know an upper bound on
each one: the moment its answer came back (or it failed). The budget keeps the
last `limit` of those completion times and allows a new request only when the
oldest of them is more than `window` (plus a hair) in the past, so the new
request arrives more than `window` after the one `limit` requests earlier: no
window can ever hold more than `limit` of ours. Completion times instead of
send times cost a request's latency per `limit` requests (about 1-2% of the
ceiling on loopback) and buy a guarantee that does not depend on a guessed
safety margin.

Pure logic over an injected clock, not thread-safe: its store serialises
calls (`MemoryStore` holds a lock around them, since the worker thread and an
app thread spending a permit through `Client.request_permit` share it).
A request granted and not yet completed (`start`, then `record`) is counted
as in flight, the way the shared stores count one (below), so two threads
granted at once can never exceed the limit.

A store shared by several processes (`bento_track.stores.SQLiteStore`) keeps
the same log in the store instead, with one difference: another process's
request may still be in flight, its completion unknown. `log_delay` counts
such a request as completing in the future, which keeps the guarantee: take
any `limit + 1` of our requests that arrive within `window`, and the one
granted last. Each of the others arrived after (its arrival - `window`), so
each completed after (its grant - `window`), or had not completed at its
grant; either way it was counted then, `limit` of them, and the grant could
not have been made.
"""

from __future__ import annotations

from collections import deque

from .clock import Clock

__all__ = ["IN_FLIGHT_POLL", "RequestBudget", "log_delay"]

#: slack added to the window, for clock granularity between us and the server
_EPSILON = 0.002
#: seconds between looks while only an in-flight request ending frees a slot
IN_FLIGHT_POLL = 0.05


def log_delay(
    done: list[float], in_flight: int, limit: int, window: float, now: float
) -> float | None:
    """Seconds until one more request may start under a log of completion
    times `done` (ascending) and `in_flight` requests not yet completed;
    0.0 if it may start now, None if only an in-flight request ending can
    free a slot."""
    horizon = now - window - _EPSILON
    live = [t for t in done if t > horizon]
    over = len(live) + in_flight - limit + 1
    if over <= 0:
        return 0.0
    if over > len(live):
        return None
    return max(0.0, live[over - 1] + window + _EPSILON - now)


class RequestBudget:
    """A sliding-window log of request completion times plus a 429 pause."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._log: deque[float] = deque(maxlen=limit)
        self.paused_until = 0.0
        #: requests granted (`start`) and not yet completed (`record`)
        self.in_flight = 0

    def delay(self) -> float:
        """Seconds until a request may start (0.0 if it may start now); with
        requests in flight, `IN_FLIGHT_POLL` while only one of them ending
        can free a slot."""
        now = self._clock.monotonic()
        wait = self.paused_until - now
        if self.in_flight:
            found = log_delay(
                list(self._log), self.in_flight, self.limit, self.window, now
            )
            wait = max(wait, IN_FLIGHT_POLL if found is None else found)
        elif len(self._log) >= self.limit:
            wait = max(wait, self._log[0] + self.window + _EPSILON - now)
        return max(0.0, wait)

    def start(self) -> None:
        """Note that a request was granted: in flight until `record`."""
        self.in_flight += 1

    def used(self) -> int:
        """Requests completed within the last `window` seconds."""
        horizon = self._clock.monotonic() - self.window
        return sum(1 for t in self._log if t > horizon)

    def record(self) -> None:
        """Note that a request just completed (answered or failed); it is no
        longer in flight."""
        self.in_flight = max(0, self.in_flight - 1)
        self._log.append(self._clock.monotonic())

    def pause(self, seconds: float) -> None:
        """Stop all sending for `seconds` (a 429), never shortening a pause."""
        self.paused_until = max(self.paused_until, self._clock.monotonic() + seconds)
