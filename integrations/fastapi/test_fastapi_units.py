"""The Starlette/FastAPI helpers in process: the lifespans flush every
client at shutdown (delivered to the emulator), the dependencies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import Depends, FastAPI

import bento_track
from bento_track import BentoMiddleware
from bento_track.integrations.fastapi import (
    flushing,
    identity,
    lifespan,
    require_identity,
)


def test_lifespans_flush_every_client(emulator: Any) -> None:
    clients = [
        bento_track.Client(**emulator.client_kwargs(), flush_interval=3600)
        for _ in range(2)
    ]
    seen: list[str] = []

    @asynccontextmanager
    async def mine(app: Any) -> AsyncIterator[dict[str, int]]:
        seen.append("start")
        yield {"answer": 42}
        seen.append("stop")

    async def run() -> None:
        async with lifespan(None):
            clients[0].track("one", email="a@example.com")
        async with flushing(mine)(None) as state:
            assert state == {"answer": 42}
            clients[1].track("two", email="b@example.com")

    try:
        asyncio.run(run())
        assert [e["type"] for e in emulator.inspect.events()] == ["one", "two"]
        assert seen == ["start", "stop"]
    finally:
        for client in clients:
            client.shutdown(1)


def test_identity_dependencies(bento_events: Any) -> None:
    app = FastAPI()
    app.add_middleware(BentoMiddleware, identify=lambda info: info.header("x-email"))

    @app.get("/me")
    async def me(email: str | None = Depends(identity)) -> dict[str, Any]:
        return {"email": email}

    @app.get("/must")
    def must(email: str = Depends(require_identity)) -> dict[str, Any]:
        return {"email": email}

    async def run() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return [
                (await http.get("/me")).json(),
                (await http.get("/me", headers={"x-email": "a@example.com"})).json(),
                (await http.get("/must")).status_code,
                (await http.get("/must", headers={"x-email": "b@example.com"})).json(),
            ]

    assert asyncio.run(run()) == [
        {"email": None},
        {"email": "a@example.com"},
        401,
        {"email": "b@example.com"},
    ]
