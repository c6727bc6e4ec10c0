"""Helpers the test suites share: waiting on a condition with a deadline,
and reading what the emulator received. (Child processes, ports and a
redis-server of the tests' own are in `tests/support`.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition"
) -> T:
    """Poll `predicate` until it returns something true, and return that;
    fail the test at the deadline (no bare sleep). Polls every 10 ms at
    first, then less often (at most every 0.1 s): a poll may be an HTTP
    request, and the machine may be loaded."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    pause = 0.01
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        tick.wait(pause)
        pause = min(pause * 1.5, 0.1)
    return result


def budget(emulator: Any, limit: int, window: float, **options: Any) -> dict[str, Any]:
    """Client options for the emulator's account with a budget of `limit`
    requests per `window` seconds (and `options`), the emulator's rate limit
    set to the same."""
    emulator.inspect.set_rate_limit(limit, window)
    return dict(
        emulator.client_kwargs(),
        requests_per_minute=limit,
        rate_window=window,
        **options,
    )


def max_in_window(times: list[float], window: float) -> int:
    """The most requests whose arrivals fall within any `window` seconds."""
    times = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(times):
        while t - times[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


def posts(emulator: Any) -> list[dict[str, Any]]:
    """The emulator's log entries of `/batch/events` requests."""
    return [
        r for r in emulator.inspect.requests() if r["path"].endswith("/batch/events")
    ]


def seqs(emulator: Any) -> list[int]:
    """The `details.seq` of every event the emulator stored, in arrival order."""
    return [e["details"]["seq"] for e in emulator.inspect.events()]
