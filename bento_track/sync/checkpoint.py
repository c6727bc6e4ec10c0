"""Where a subscriber sync stands: a small JSON file saying how far Bento
confirmed, so a sync stopped halfway (killed, timed out, Ctrl-C) resumes
there instead of at the first row.

    {"version": 1, "source": "csv sha256:9f2c...", "done": 12000,
     "position": 48211, "updated_at": "2026-12-03T19:22:24Z"}

- `done`: rows of the input, in its order, that are behind the sync: sent
  and confirmed by Bento (the client's `flush()` returned True), or skipped
  as invalid. Without positions, a rerun skips that many rows.
- `position`: the `position` of the last of those rows, when rows carry one
  (a database id, in ascending order). The caller resumes its query after
  it (`WHERE id > position`) and the rows are not read again.
- `source`: what the sync reads (a CSV's digest, a model and `--since`);
  a checkpoint written for another source is refused, not half-applied.

The file is replaced atomically (a temporary file beside it, fsync, rename)
after each confirmed batch, so a crash leaves the old checkpoint or the new
one, never a torn one. It is deleted when the sync finishes: a file that
exists is an unfinished sync.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = ["CHECKPOINT_VERSION", "Position", "SyncCheckpoint"]

CHECKPOINT_VERSION = 1

#: where a row stands in the input's order: a database id (int or str)
Position = int | str


class SyncCheckpoint:
    """The checkpoint file at `path`, for the sync of `source`.

    Reads the file when it exists (`done` and `position` then say where the
    last run stopped). `restart=True` ignores it: the sync starts at the
    first row and overwrites it.

    Raises:
        ConfigurationError: the file cannot be read, is not a checkpoint,
            or belongs to another source (the message says how to start
            over).
    """

    def __init__(
        self, path: str | os.PathLike[str], source: str = "", *, restart: bool = False
    ) -> None:
        self.path = Path(path)
        self.source = source
        #: rows behind the sync (see the module docstring)
        self.done = 0
        #: the position of the last of them, if rows carry positions
        self.position: Position | None = None
        #: True when an unfinished sync's file was found and read
        self.resumed = False
        if not restart:
            self._read()

    def __repr__(self) -> str:
        return (
            f"SyncCheckpoint({str(self.path)!r}, done={self.done}, "
            f"position={self.position!r})"
        )

    def _read(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ConfigurationError(
                f"checkpoint {self.path}: cannot read it: {exc.strerror or exc}"
            ) from None
        try:
            doc: Any = json.loads(text)
            version, done = doc["version"], doc["done"]
            position = doc.get("position")
            source = doc.get("source", "")
        except (ValueError, TypeError, KeyError):
            raise ConfigurationError(
                f"checkpoint {self.path} is not a bento_track sync checkpoint; "
                "delete it, or name another file"
            ) from None
        if (
            version != CHECKPOINT_VERSION
            or type(done) is not int
            or done < 0
            or not (position is None or type(position) in (int, str))
        ):
            raise ConfigurationError(
                f"checkpoint {self.path} is not a bento_track sync checkpoint "
                f"of version {CHECKPOINT_VERSION}; delete it, or name another file"
            )
        if source != self.source:
            raise ConfigurationError(
                f"checkpoint {self.path} is of another sync ({source or 'unnamed'}, "
                f"not {self.source or 'unnamed'}): the input changed since it was "
                "written. Start over with --restart (or delete the file)"
            )
        self.done = done
        self.position = position
        self.resumed = True

    def save(self, done: int, position: Position | None) -> None:
        """Record that `done` rows are behind the sync, the last at
        `position`; atomically (a crash leaves the old file or the new)."""
        doc = {
            "version": CHECKPOINT_VERSION,
            "source": self.source,
            "done": done,
            "position": position,
            "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(
                timespec="seconds"
            ),
        }
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(doc, handle)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise ConfigurationError(
                f"checkpoint {self.path}: cannot write it: {exc.strerror or exc}"
            ) from None
        self.done = done
        self.position = position

    def clear(self) -> None:
        """Delete the file: the sync finished."""
        self.path.unlink(missing_ok=True)
        self.done = 0
        self.position = None
