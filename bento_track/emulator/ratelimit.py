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

__all__ = ["MAX_REQUESTS", "MAX_WINDOW", "SlidingWindowLimiter", "check_limit"]

#: Bounds that keep the window log small and every figure printable: the
#: log holds up to `limit` timestamps per key, and a window over a day is
#: no rate limit a client could be tested against.
MAX_REQUESTS = 1_000_000
MAX_WINDOW = 86_400.0


def check_limit(
    limit: object,
    window: object,
    names: tuple[str, str] = ("requests", "window_seconds"),
) -> tuple[int, float]:
    """`limit` and `window` as the limiter takes them.

    Args:
        limit: whole requests, 1..`MAX_REQUESTS` (an integral float passes).
        window: seconds, finite, over 0 and at most `MAX_WINDOW`.
        names: what to call the two in a message (the inspection API's
            field names by default).

    Raises:
        ValueError: naming the bad one. A bool is not a number.
    """
    limit_name, window_name = names
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise ValueError(f"{limit_name} must be a number")
    if isinstance(limit, float) and not limit.is_integer():
        raise ValueError(f"{limit_name} must be a whole number")  # NaN, inf too
    if not 1 <= limit <= MAX_REQUESTS:
        raise ValueError(f"{limit_name} must be between 1 and {MAX_REQUESTS}")
    if isinstance(window, bool) or not isinstance(window, (int, float)):
        raise ValueError(f"{window_name} must be a number")
    if not 0 < window <= MAX_WINDOW:  # False for NaN
        raise ValueError(
            f"{window_name} must be over 0 and at most {MAX_WINDOW:g} seconds"
        )
    return int(limit), float(window)


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
        """Change the limit at run time; accepted requests already logged still count.

        Raises:
            ValueError: see `check_limit`.
        """
        limit, window = check_limit(limit, window)
        with self._lock:
            self.limit = limit
            self.window = window

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
