"""The progress of a sync: a bar with rate and ETA redrawn in place on a
terminal, plain lines in a log, on an injected clock."""

from __future__ import annotations

import io

import pytest

from bento_track.errors import ConfigurationError
from bento_track.sync import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_a_bar_with_rate_and_eta() -> None:
    out, clock = Terminal(), Clock()
    bar = Progress(out, 20_000, start=2000, clock=clock)
    assert bar.mode == "bar"
    bar.update(2000)
    clock.now += 4.0
    bar.update(12_000)  # 10,000 rows in 4 s: 2,500 a second, 8,000 to go
    frame = out.getvalue().split("\r")[-1]
    assert frame.startswith("[" + "#" * 14 + "." * 10 + "] 12,000/20,000   60%")
    assert "2,500 rows/s" in frame and "ETA 0:03" in frame
    clock.now += 0.01
    bar.update(12_001)  # too soon to redraw
    assert out.getvalue().split("\r")[-1] == frame
    bar.note("resumed")
    assert out.getvalue().endswith("\r\x1b[Kresumed\n")
    clock.now += 1.99
    bar.update(20_000)  # 18,000 rows in 6 s
    bar.close()
    assert out.getvalue().endswith(
        "\r[" + "#" * 24 + "] 20,000/20,000  100%  3,000 rows/s\x1b[K\n"
    )


def test_a_log_gets_plain_lines_now_and_then() -> None:
    out, clock = io.StringIO(), Clock()
    lines = Progress(out, 3000, clock=clock, every=10.0)
    assert lines.mode == "lines"
    lines.update(0)
    for done in range(100, 3001, 100):
        clock.now += 1.0
        lines.update(done)
    lines.close()
    assert out.getvalue().splitlines() == [
        "synced 0/3,000    0%  0 rows/s",
        "synced 1,000/3,000   33%  100 rows/s  ETA 0:20",
        "synced 2,000/3,000   66%  100 rows/s  ETA 0:10",
        "synced 3,000/3,000  100%  100 rows/s",
    ]
    assert "\r" not in out.getvalue()


def test_off_writes_nothing_and_a_bad_mode_is_refused() -> None:
    out = Terminal()
    quiet = Progress(out, 10, mode="off")
    quiet.update(5)
    quiet.note("x")
    quiet.close()
    assert out.getvalue() == ""
    with pytest.raises(ConfigurationError, match="progress must be one of"):
        Progress(out, 10, mode="fancy")
