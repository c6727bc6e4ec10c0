"""How far a sync is, as people read it: a bar redrawn in place on a
terminal, plain lines in a log.

    [##############..........] 12,000/20,000  60%  1,420 rows/s  ETA 0:06

On a terminal (`mode="auto"` and the stream is a TTY, or `mode="bar"`) the
bar is redrawn at most ten times a second. Elsewhere (`"lines"`: a log file,
a CI job, `kubectl logs`) one plain line is written when the sync starts,
then at most every `every` seconds, and when it ends. The rate counts this
run's rows only, so a resumed sync's ETA is not flattered by the rows the
checkpoint skipped. No dependency: a bar this size does not need tqdm.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from ..errors import ConfigurationError

__all__ = ["MODES", "Progress"]

#: what `Progress(mode=...)` accepts
MODES = ("auto", "bar", "lines", "off")
_BAR_WIDTH = 24
_REDRAW = 0.1


class _Stream(Protocol):
    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


def _is_tty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # a closed or odd stream
        return False


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


class Progress:
    """Progress of `total` rows (None: unknown) on `stream`.

    Args:
        stream: where to write (the CLI's stderr).
        total: rows the sync expects, for the percentage and ETA (an
            estimate is fine; None shows counts and rate only).
        mode: one of `MODES`.
        start: rows already behind the sync (a resumed checkpoint).
        every: seconds between two plain lines.
        clock: monotonic seconds (tests inject one).
    """

    def __init__(
        self,
        stream: _Stream,
        total: int | None,
        *,
        mode: str = "auto",
        start: int = 0,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in MODES:
            raise ConfigurationError(
                f"progress must be one of {', '.join(MODES)}, not {mode!r}",
                setting="progress",
            )
        if mode == "auto":
            mode = "bar" if _is_tty(stream) else "lines"
        self.mode = mode
        self.stream = stream
        self.total = total
        self.start = start
        self.done = start
        self.every = every
        self._clock = clock
        self._began = clock()
        self._last_drawn: float | None = None
        self._drawn_done: int | None = None  # what the last drawing showed
        self._bar_shown = False

    def line(self) -> str:
        """The current figures as one line (without the bar)."""
        elapsed = max(self._clock() - self._began, 1e-9)
        rate = (self.done - self.start) / elapsed
        parts = [f"{self.done:,}" + (f"/{self.total:,}" if self.total else "")]
        if self.total:
            parts.append(f"{min(100, 100 * self.done // self.total):3d}%")
        parts.append(f"{rate:,.0f} rows/s")
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        return "  ".join(parts)

    def update(self, done: int, *, final: bool = False) -> None:
        """`done` rows are behind the sync now; redraw when it is time."""
        self.done = done
        if self.mode == "off":
            return
        now = self._clock()
        wait = _REDRAW if self.mode == "bar" else self.every
        due = self._last_drawn is None or now - self._last_drawn >= wait
        if not (due or (final and done != self._drawn_done)):
            return
        if self.mode == "bar":
            self._draw_bar()
        else:
            self.stream.write(f"synced {self.line()}\n")
            self.stream.flush()
        self._last_drawn = now
        self._drawn_done = done

    def _draw_bar(self) -> None:
        if self.total:
            filled = min(_BAR_WIDTH, _BAR_WIDTH * self.done // self.total)
        else:
            filled = 0
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        # `\r` and erase-to-end: a shorter line leaves nothing behind.
        self.stream.write(f"\r[{bar}] {self.line()}\x1b[K")
        self.stream.flush()
        self._bar_shown = True

    def note(self, text: str) -> None:
        """Write `text` as a line of its own (the bar, if shown, is redrawn
        below it at the next update)."""
        if self.mode == "off":
            return
        if self._bar_shown:
            self.stream.write("\r\x1b[K")
            self._bar_shown = False
            self._last_drawn = None
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """The last figures, and the bar's line ended."""
        self.update(self.done, final=True)
        if self.mode == "bar" and self._bar_shown:
            self.stream.write("\n")
            self.stream.flush()
            self._bar_shown = False
