"""The Redis store's own suite, against a real `redis-server` (the session's,
`redis_url`: a namespace of the test's own; or `own_redis`, a server of the
test's own to stop, kill or restart; both in `tests/conftest.py`). `stores`
opens Redis stores on the test's namespace (each one a process, as Redis sees
it); `emulator` is each test's own. What every store must do is in
`tests/store_contract`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..support.fixtures import isolated_emulator  # noqa: F401 (the emulator)
from ..support.stores import RedisStores


@pytest.fixture
def stores(redis_url: str) -> Iterator[RedisStores]:
    """Redis stores on the test's namespace, closed when the test ends."""
    with RedisStores(redis_url) as made:
        yield made
