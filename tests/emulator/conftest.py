"""Helpers for the emulator's own tests: raw httpx clients (loopback and
in-process) and a fake clock for the rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from bento_track.emulator import EmulatorServer, EmulatorSettings, create_app

UA = "bento-track-tests/1.0"


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def bento_client(server: EmulatorServer, **kwargs: Any) -> httpx.Client:
    """A raw client with Bento's auth, a real User-Agent and `site_uuid`."""
    kwargs.setdefault("auth", (server.publishable_key, server.secret_key))
    kwargs.setdefault("params", {"site_uuid": server.site_uuid})
    headers = {"User-Agent": UA, **kwargs.pop("headers", {})}
    return httpx.Client(
        base_url=server.base_url,
        headers=headers,
        trust_env=False,
        verify=False,  # plain http on loopback; skips loading CA certificates
        **kwargs,
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """A raw loopback client for the shared, freshly reset emulator."""
    with bento_client(emulator) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def inprocess(
    clock: FakeClock,
) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """`make(**settings)`: an async client for a fresh in-process app
    (`httpx.ASGITransport`); the app's clock is the `clock` fixture."""
    made: list[httpx.AsyncClient] = []

    def make(**settings: Any) -> httpx.AsyncClient:
        settings.setdefault("clock", clock)
        config = EmulatorSettings(**settings)
        app = create_app(config)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://127.0.0.1/api/v1",
            auth=(config.publishable_key, config.secret_key),
            params={"site_uuid": config.site_uuid},
            headers={"User-Agent": UA},
        )
        client.app = app  # type: ignore[attr-defined]
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
        # ASGITransport runs no lifespan, so nothing else closes the app's
        # SQLite connection.
        client.app.state.emulator.store.close()  # type: ignore[attr-defined]
