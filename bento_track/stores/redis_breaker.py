"""The Redis store's breaker: after a failed call, no call for a while.

A hung Redis costs each call the whole socket timeout (2 s), and the worker
has other work. So a failed call opens the breaker for a pause that doubles
with each failure in a row (0.25 s up to 3 s, real seconds), during which
calls fail at once; the first call that succeeds closes it and says how
long Redis was out. redis-py's errors become `RedisUnavailable`, or
`AnswerLost` when the call may have run (a timeout after the command was
sent): the caller then keeps it aside to send again, never assumes either.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from .._internal import RateLimitedLog, logger

__all__ = ["AnswerLost", "Breaker", "RedisUnavailable"]

T = TypeVar("T")

#: the breaker's first and longest pause after a failed call (real seconds)
_FIRST = 0.25
_LONGEST = 3.0
#: answers that mean "not now", not "broken"
_TRANSIENT = ("OOM", "LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN")


class RedisUnavailable(Exception):
    """Redis could not be used just now (the message says why)."""


class AnswerLost(RedisUnavailable):
    """A call whose answer was lost: it may or may not have run."""


class Breaker:
    """Calls to one Redis server, held back for a while after a failure.

    Args:
        errors: redis-py's `redis.exceptions`.
        location: the store, for messages (no password).
        holding: where events wait meanwhile, for messages.
        log: the store's rate-limited log (a warning a minute at most).
        on_recovered: called when a call succeeds after failures (Redis may
            have come back empty).
    """

    def __init__(
        self,
        errors: Any,
        location: str,
        holding: str,
        log: RateLimitedLog,
        on_recovered: Callable[[], None],
    ) -> None:
        self._errors = errors
        self._location = location
        self._holding = holding
        self._log = log
        self._on_recovered = on_recovered
        self._down_until = 0.0  # time.monotonic(): open until then
        self._failures = 0
        self._down_since: float | None = None

    def usable(self) -> bool:
        """Whether a call may be made now (the breaker is closed)."""
        return time.monotonic() >= self._down_until

    def delay(self) -> float:
        """Seconds until a call may be made (at least 0.05)."""
        return max(0.05, self._down_until - time.monotonic())

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()`, unless the breaker is open; a failure opens it.

        Raises:
            RedisUnavailable: the breaker is open, or `fn` failed for a
                reason of Redis's (`AnswerLost` when it may have run).
        """
        if not self.usable():
            raise RedisUnavailable("Redis was unavailable moments ago")
        errors = self._errors
        try:
            result = fn()
        except (errors.AuthenticationError, errors.AuthorizationError) as exc:
            # Refused before any command ran: a wrong password or user.
            self.failed(exc, refused=True)
            raise RedisUnavailable(str(exc) or type(exc).__name__) from None
        except (errors.ConnectionError, errors.TimeoutError) as exc:
            self.failed(exc)
            text = str(exc) or type(exc).__name__
            if "connecting to" in text and not isinstance(exc, errors.TimeoutError):
                # No connection, so nothing was sent: it did not run.
                raise RedisUnavailable(text) from None
            raise AnswerLost(text) from None
        except errors.RedisError as exc:
            self.failed(exc)
            raise RedisUnavailable(str(exc)) from None
        if self._failures:
            self._recovered()
        return result

    def failed(self, exc: Exception, *, refused: bool = False) -> None:
        """A call failed with `exc`: open the breaker, and say so."""
        self._failures += 1
        pause = min(_LONGEST, _FIRST * 2 ** (self._failures - 1))
        self._down_until = time.monotonic() + pause
        if self._down_since is None:
            self._down_since = time.monotonic()
        text = str(exc) or type(exc).__name__
        if refused or (
            not text.startswith(_TRANSIENT)
            and isinstance(exc, self._errors.ResponseError)
        ):
            # Not an outage that passes: a setting to fix (once a minute).
            self._log.warn(
                "redis_refused",
                1,
                "the Redis store %s refused this process: %s",
                self._location,
                text,
            )
        self._log.warn(
            "redis_down",
            1,
            "the Redis store %s is unavailable (%s); events wait "
            "in %s and sending holds until it is back",
            self._location,
            text,
            self._holding,
        )

    def _recovered(self) -> None:
        down = time.monotonic() - (self._down_since or time.monotonic())
        self._failures = 0
        self._down_since = None
        self._on_recovered()
        logger.info(
            "bento_track: the Redis store %s is back after %.1f s",
            self._location,
            down,
        )
