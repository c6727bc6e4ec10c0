"""Two Bento accounts, each with an emulator of its own (its own site and
keys: an event sent with the other account's keys gets 401 there), and the
stores they share: one SQLite file, or one Redis database (a redis-server of
this folder's own, as the Redis store suite starts one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bento_track.emulator import EmulatorServer

from ..redis_store.conftest import RedisServer

ACCOUNTS = ("alpha", "bravo")


@pytest.fixture(scope="session")
def account_emulators() -> Iterator[dict[str, EmulatorServer]]:
    servers = {
        name: EmulatorServer(
            port=0,
            site_uuid=f"site-{name}",
            publishable_key=f"pk-{name}",
            secret_key=f"sk-{name}",
            requests_per_minute=10_000,
        )
        for name in ACCOUNTS
    }
    for server in servers.values():
        server.start()
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
def emulators(
    account_emulators: dict[str, EmulatorServer],
) -> dict[str, EmulatorServer]:
    """Both accounts' emulators, reset, with a rate limit no test reaches."""
    for server in account_emulators.values():
        server.inspect.reset()
        server.inspect.set_rate_limit(10_000, 60.0)
    return account_emulators


@pytest.fixture(scope="session")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("accounts-redis")).start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One store both accounts are given (a shared deploy template)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    server: RedisServer = request.getfixturevalue("shared_redis")
    return server.url(namespace=f"shared-{tmp_path.name}")
