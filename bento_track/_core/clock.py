"""The clock the delivery worker reads and waits on, injectable for tests.

Every decision of the worker that depends on time (batch age, the request
budget, backoff, `Retry-After` pauses) goes through a `Clock`, so tests can
drive time instead of sleeping. Caller-facing deadlines (`flush(timeout)`,
`shutdown(timeout)`) always use real time: they bound how long the host waits.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Monotonic time, wall time, and an interruptible wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def time(self) -> float:
        """Seconds since the epoch (for timestamps shown to people)."""
        ...

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Wait until `event` is set or `timeout` seconds of this clock passed;
        return whether the event is set."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    def time(self) -> float:
        """`time.time()`."""
        return time.time()

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """`event.wait(timeout)`: block until the event is set or `timeout`
        real seconds passed (forever for None); return whether it is set."""
        return event.wait(timeout)


class FakeClock:
    """A clock tests drive by hand (`advance`) or that jumps ahead by itself
    whenever someone waits on it (`auto_advance=True`), so backoff and pauses
    cost no real time. Every timed wait is recorded in `waits`.

    Waits poll their event every few milliseconds of real time, so a worker
    waiting on this clock still notices `set()` and `advance()` promptly.
    """

    def __init__(self, start: float = 1_000.0, *, auto_advance: bool = False) -> None:
        self._now = start
        self._epoch = 1_700_000_000.0 - start
        self.auto_advance = auto_advance
        self.waits: list[float] = []
        self._lock = threading.Lock()
        self.waiting = 0

    def monotonic(self) -> float:
        """The fake time; moves only by `advance` (or an auto-advancing wait)."""
        return self._now

    def time(self) -> float:
        """Wall time matching the fake monotonic time: the start is
        1,700,000,000 (November 2023), so timestamps look real."""
        return self._epoch + self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`; waiters whose timeout is
        reached return within a few real milliseconds."""
        with self._lock:
            self._now += seconds

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Wait until `event` is set or `timeout` seconds of fake time passed
        (`timeout` None: until set, in real time); return whether it is set.

        The timeout is appended to `waits` and `waiting` counts the waiters.
        With `auto_advance`, an unset event advances the clock by `timeout`
        and returns at once.
        """
        if timeout is None:
            return event.wait()
        with self._lock:
            self.waits.append(timeout)
            self.waiting += 1
        try:
            if self.auto_advance:
                if not event.is_set():
                    self.advance(timeout)
                return event.is_set()
            deadline = self._now + timeout
            while not event.is_set() and self._now < deadline:
                event.wait(0.002)
            return event.is_set()
        finally:
            with self._lock:
                self.waiting -= 1
