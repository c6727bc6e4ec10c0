"""Bento's per-account rate limit as a sliding window log.

A token bucket would let a burst through after a quiet spell; a window log
refuses any request that would make more than `limit` accepted requests in
any `window` seconds, which is the stricter reading of "100 requests per
minute" and the one a client must survive.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["SlidingWindowLimiter"]


class SlidingWindowLimiter:
    """At most `limit` accepted requests per key in any `window` seconds.

    Refused requests are not recorded, so a client hammering through 429s
    does not push its own recovery further away.

    Args:
        limit: requests accepted per window.
        window: the window length in seconds.
        clock: monotonic seconds (injectable so tests never wait).
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._log: dict[str, deque[float]] = {}
        self.limit = limit
        self.window = window
        self.configure(limit, window)

    def configure(self, limit: int, window: float) -> None:
        """Change the limit at run time; accepted requests already logged still count."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window <= 0:
            raise ValueError("window must be positive")
        with self._lock:
            self.limit = int(limit)
            self.window = float(window)

    def acquire(self, key: str) -> int:
        """Record one request for `key` if a slot is free.

        Returns:
            0 when accepted, else the whole seconds until a slot frees (>= 1),
            suitable for `Retry-After`.
        """
        with self._lock:
            now = self._clock()
            log = self._log.setdefault(key, deque())
            horizon = now - self.window
            while log and log[0] <= horizon:
                log.popleft()
            if len(log) < self.limit:
                log.append(now)
                return 0
            # The slot frees when the oldest request that keeps the window
            # full leaves it.
            frees_at = log[len(log) - self.limit] + self.window
            return max(1, math.ceil(frees_at - now))

    def reset(self) -> None:
        """Forget every accepted request."""
        with self._lock:
            self._log.clear()

    def snapshot(self) -> dict[str, object]:
        """The settings and the current use per key, for the inspection API."""
        with self._lock:
            now = self._clock()
            used = {
                key: sum(1 for t in log if t > now - self.window)
                for key, log in self._log.items()
            }
            return {"requests": self.limit, "window_seconds": self.window, "used": used}
