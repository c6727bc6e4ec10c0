"""The SQLite store's own suite: `stores` opens SQLite stores on one file of
the test's own (each one a process, as the store sees it) on a FakeClock.
What every store must do is in `tests/store_contract`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bento_track.emulator import EmulatorServer

from ..support.stores import SQLiteStores


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[SQLiteStores]:
    """SQLite stores on `tmp_path / "s.db"`, closed when the test ends."""
    made = SQLiteStores(tmp_path / "s.db")
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def emulator(own_emulator: EmulatorServer) -> EmulatorServer:
    """An emulator of the test's own: a child process of an earlier test
    that delivers late can never count here."""
    return own_emulator
