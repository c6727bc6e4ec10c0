"""The SQLite store's own suite: `stores` opens SQLite stores on one file of
the test's own (each one a process, as the store sees it) on a FakeClock;
`emulator` is each test's own. What every store must do is in
`tests/store_contract`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.fixtures import isolated_emulator  # noqa: F401 (the emulator)
from ..support.stores import SQLiteStores


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[SQLiteStores]:
    """SQLite stores on `tmp_path / "s.db"`, closed when the test ends."""
    with SQLiteStores(tmp_path / "s.db") as made:
        yield made
