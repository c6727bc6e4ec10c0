"""Internal plumbing shared by every part: the library's own logger and the guards
that keep a bug in bento_track from ever reaching the host application."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

#: The library's own logger. Capture paths ignore records from it (no loops).
logger = logging.getLogger("bento_track")

_local = threading.local()


def inside_library() -> bool:
    """True while this thread is running bento_track code that may log or send."""
    return getattr(_local, "active", False)


@contextlib.contextmanager
def library_section() -> Iterator[None]:
    """Mark this thread as busy inside bento_track, so logging from here is not
    captured again by `BentoHandler` (a re-entry guard, not a lock)."""
    previous = getattr(_local, "active", False)
    _local.active = True
    try:
        yield
    finally:
        _local.active = previous


class Counter:
    """A thread-safe counter, for the failures and refusals capture paths count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self) -> None:
        with self._lock:
            self.count += 1


#: internal failures swallowed by `suppress_internal_errors`
internal_errors = Counter()


@contextlib.contextmanager
def suppress_internal_errors(where: str) -> Iterator[None]:
    """Run a capture path so that any exception in it is counted, logged on the
    `bento_track` logger, and swallowed: instrumentation never breaks the host."""
    try:
        yield
    except Exception:
        internal_errors.add()
        with library_section():
            logger.exception("bento_track: internal error in %s (ignored)", where)
