"""The stores the contract runs against: memory, SQLite (a file of the
test's own) and Redis (a namespace of the test's own on the session's real
`redis-server`): `stores` in this process, `store_url` for child processes
(the durable ones), with an `emulator` of each test's own. Adding a store is adding a `Stores` (`tests/support/
stores`) and a parameter here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.fixtures import isolated_emulator  # noqa: F401 (the emulator)
from ..support.stores import (
    MemoryStores,
    RedisStores,
    SQLiteStores,
    Stores,
    StoreURL,
)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Stores of one kind on one backing, closed when the test ends."""
    made: Stores
    if request.param == "memory":
        made = MemoryStores()
    elif request.param == "sqlite":
        made = SQLiteStores(tmp_path / "contract.db")
    else:
        made = RedisStores(request.getfixturevalue("redis_url"))
    with made:
        yield made


@pytest.fixture
def shared(stores: Stores) -> Stores:
    """Stores whose processes are apart (every kind but memory)."""
    if not stores.processes:
        pytest.skip("a memory store is one process's own: no other shares it")
    return stores


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> StoreURL:
    """A durable store by URL, of the test's own (a file; a namespace)."""
    if request.param == "sqlite":
        return StoreURL("sqlite", f"sqlite:///{tmp_path}/store.db")
    return StoreURL("redis", request.getfixturevalue("redis_url"))
