"""What the monitoring suite's apps do, whatever the framework: track good,
invalid and refused events, hold a request (to steer the next one to the
other worker), and report this process's `stats()`."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bento_track

#: the event type the suite tells the emulator to refuse (400)
REFUSED = "report.refused"


def track_some(args: Mapping[str, str]) -> dict[str, Any]:
    """`n` good events, `invalid` invalid ones (dropped: invalid) and
    `refused` ones the emulator answers 400 for (dropped: rejected)."""
    for i in range(int(args.get("n", 0))):
        bento_track.track("page.viewed", email="user@example.com", details={"i": i})
    for _ in range(int(args.get("invalid", 0))):
        bento_track.track("page.viewed", email="not an email")
    for _ in range(int(args.get("refused", 0))):
        bento_track.track(REFUSED, email="user@example.com")
    return {"pid": os.getpid()}


def hold(folder: str) -> dict[str, Any]:
    """Say this worker's pid in `folder/entered`, then wait (20 s at most)
    for `folder/release`: the worker serves nothing else meanwhile."""
    where = Path(folder)
    part = where / "entered.part"
    part.write_text(str(os.getpid()))
    part.rename(where / "entered")  # whole, at once: the suite reads it
    deadline = time.monotonic() + 20
    while not (where / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"pid": os.getpid()}


def stats_of_this_process() -> dict[str, Any]:
    """This process's pid and `stats()`, as JSON."""
    return {"pid": os.getpid(), "stats": dataclasses.asdict(bento_track.stats())}
