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

Pure logic over an injected clock; used only by the worker thread (or the
caller in sync mode, under the client's send lock).
"""

from __future__ import annotations

from collections import deque

from .clock import Clock

__all__ = ["RequestBudget"]

#: slack added to the window, for clock granularity between us and the server
_EPSILON = 0.002


class RequestBudget:
    """A sliding-window log of request completion times plus a 429 pause."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._log: deque[float] = deque(maxlen=limit)
        self.paused_until = 0.0

    def delay(self) -> float:
        """Seconds until a request may start (0.0 if it may start now)."""
        now = self._clock.monotonic()
        wait = self.paused_until - now
        if len(self._log) >= self.limit:
            wait = max(wait, self._log[0] + self.window + _EPSILON - now)
        return max(0.0, wait)

    def record(self) -> None:
        """Note that a request just completed (answered or failed)."""
        self._log.append(self._clock.monotonic())

    def pause(self, seconds: float) -> None:
        """Stop all sending for `seconds` (a 429), never shortening a pause."""
        self.paused_until = max(self.paused_until, self._clock.monotonic() + seconds)
