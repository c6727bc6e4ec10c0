"""Internal plumbing shared by every layer: the library's own logger, the
re-entry guard that keeps our logging out of `BentoHandler`, the counters of
swallowed failures, and the rate-limited warnings that say every drop."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

__all__ = [
    "Counter",
    "RateLimitedLog",
    "inside_library",
    "internal_error",
    "internal_errors",
    "library_section",
    "logger",
    "thread_state",
]

#: The library's own logger. Capture paths ignore records from it (no loops).
logger = logging.getLogger("bento_track")

#: Per-thread state; `active` is True while the thread runs bento_track code
#: that may log. Exported for `BentoHandler`, which inlines `library_section`.
thread_state = threading.local()


def inside_library() -> bool:
    """True while this thread is running bento_track code that may log or send."""
    return getattr(thread_state, "active", False)


@contextlib.contextmanager
def library_section() -> Iterator[None]:
    """Mark this thread as busy inside bento_track, so logging from here is not
    captured again by `BentoHandler` (a re-entry guard, not a lock)."""
    previous = getattr(thread_state, "active", False)
    thread_state.active = True
    try:
        yield
    finally:
        thread_state.active = previous


class Counter:
    """A thread-safe counter, for the failures and refusals capture paths count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self, n: int = 1) -> None:
        """Add `n` to `count`, under the lock."""
        with self._lock:
            self.count += n


#: internal failures swallowed by `internal_error`
internal_errors = Counter()


def internal_error(where: str) -> None:
    """Count and log (with the traceback) an unexpected failure in bento_track
    code; call it from an `except` block. Never raises."""
    internal_errors.add()
    with library_section():
        logger.exception("bento_track: internal error in %s (ignored)", where)


class RateLimitedLog:
    """Warnings on the `bento_track` logger, at most one per key per `interval`
    seconds; the next one says how many were held back since the last.

    Used for drops (one key per reason) and invalid events (one key per
    distinct message), so a flood of bad events costs a line a minute.
    """

    def __init__(
        self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        #: key -> (when last logged, count since then)
        self._seen: dict[str, tuple[float, int]] = {}

    def warn(self, key: str, count: int, message: str, *args: object) -> None:
        """Log `message % args` for `count` occurrences, unless `key` was
        logged less than `interval` ago (then the count is kept for later)."""
        now = self._clock()
        with self._lock:
            last, held = self._seen.get(key, (None, 0))
            if last is not None and now - last < self.interval:
                self._seen[key] = (last, held + count)
                return
            if len(self._seen) >= 4096:  # distinct messages are few; bound anyway
                self._seen.clear()
            self._seen[key] = (now, 0)
        total = held + count
        with library_section():
            logger.warning(
                "bento_track: " + message + " (%d since the last such warning)",
                *args,
                total,
            )
