"""Helpers the test suites share: waiting on a condition with a deadline, and
reading what the emulator and child processes report."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll `predicate` until true; fail the test at the deadline (no bare sleep)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        tick.wait(0.01)


def last_json(text: str) -> Any:
    """The JSON document on the last line of a child process's output."""
    return json.loads(text.strip().splitlines()[-1])


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
