"""Shared fixtures: one Bento emulator per test session, reset for each test;
one `redis-server` per session (started by the first test that asks for it).

`emulator` is a running `EmulatorServer` on a free loopback port, with data,
faults, request log and rate-limit window cleared and the default rate limit
(100 requests / 60 s) restored. Its only known email author is
`hello@example.com`; any other sender gets Bento's 422. `own_emulator` is
one such emulator for a single test.

`redis_url` is a store URL in a namespace of the test's own on the session's
`redis_server`; a test that stops, kills or restarts Redis takes `own_redis`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import bento_track
from bento_track.emulator import EmulatorServer

from .helpers import wait_until
from .support.redis_server import RedisServer

AUTHOR = "hello@example.com"
RATE_LIMIT = (100, 60.0)


def new_emulator() -> EmulatorServer:
    """An emulator on a free loopback port, with the default rate limit and
    author (not started)."""
    return EmulatorServer(
        port=0,
        requests_per_minute=RATE_LIMIT[0],
        rate_window=RATE_LIMIT[1],
        authors=[AUTHOR],
    )


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """The session's emulator (do not leave faults behind: use `emulator`)."""
    with new_emulator() as server:
        yield server


@pytest.fixture
def own_emulator() -> Iterator[EmulatorServer]:
    """An emulator of this test alone, stopped when it ends: what a process
    of an earlier test delivers late can never count here (the suites of
    child processes take it as their `emulator`)."""
    with new_emulator() as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """The running emulator, reset, with the default rate limit."""
    emulator_server.inspect.reset()
    emulator_server.inspect.set_rate_limit(*RATE_LIMIT)
    return emulator_server


@pytest.fixture
def fast_emulator(emulator: EmulatorServer) -> EmulatorServer:
    """The emulator with a rate limit no delivery test reaches."""
    emulator.inspect.set_rate_limit(10_000, 60.0)
    return emulator


@pytest.fixture
def clients() -> Iterator[Callable[..., bento_track.Client]]:
    """Build clients that are shut down at the end of the test."""
    made: list[bento_track.Client] = []

    def make(**options: Any) -> bento_track.Client:
        client = bento_track.Client(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(0.5)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's redis-server (never SIGSTOP or kill it: use `own_redis`)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    db = server.client()
    # A server younger than a window holds the first window of each store
    # (a restart must not hand out a second window's worth): the tests'
    # windows are at most 2 s, so let three seconds pass once.
    wait_until(lambda: int(db.info("server")["uptime_in_seconds"]) >= 3, 10)
    db.close()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, to stop, kill or restart."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A store URL on the session's server, in a namespace of this test."""
    return redis_server.url()
