"""Shared fixtures: one Bento emulator per test session, reset for each test.

`emulator` is a running `EmulatorServer` on a free loopback port, with data,
faults, request log and rate-limit window cleared and the default rate limit
(100 requests / 60 s) restored. Its only known email author is
`hello@example.com`; any other sender gets Bento's 422.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import bento_track
from bento_track.emulator import EmulatorServer

AUTHOR = "hello@example.com"
RATE_LIMIT = (100, 60.0)


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """The session's emulator (do not leave faults behind: use `emulator`)."""
    server = EmulatorServer(
        port=0,
        requests_per_minute=RATE_LIMIT[0],
        rate_window=RATE_LIMIT[1],
        authors=[AUTHOR],
    )
    with server:
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
        client.shutdown(0.2)
