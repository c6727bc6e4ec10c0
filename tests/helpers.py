"""Helpers the test suites share: waiting on a condition with a deadline,
reading what the emulator and child processes report, starting children in
a process group on every supported Python."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll `predicate` until true; fail the test at the deadline (no bare sleep)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        tick.wait(0.01)


def in_process_group(group: int | None) -> dict[str, Any]:
    """`subprocess.Popen` keyword arguments that start the child in process
    group `group` (0: a new group the child leads; None: the caller's).
    `Popen(process_group=...)` is new in Python 3.11; on 3.10 the child joins
    the group itself, between fork and exec."""
    if group is None:
        return {}
    if sys.version_info >= (3, 11):
        return {"process_group": group}
    return {"preexec_fn": partial(os.setpgid, 0, group)}


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
