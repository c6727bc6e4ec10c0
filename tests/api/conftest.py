"""Fixtures for the `bento_track.api` tests: both clients behind one face.

`make_api(kind, **kwargs)` builds a `BentoAPI`, or an `AsyncBentoAPI` wrapped
so its coroutines run to completion on a private event loop; tests
parametrised over `kind` then read the same for both. Retry waits go to a
recorder instead of the clock, so a test can assert what was waited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from bento_track.api import AsyncBentoAPI, BentoAPI

KINDS = ["sync", "async"]
SECRET = "sk_unit_secret_value"
UNIT_SETTINGS = {
    "site_uuid": "site-unit",
    "publishable_key": "pk_unit",
    "secret_key": SECRET,
    "base_url": "https://bento.test/api/v1",
}


class SyncOverAsync:
    """Calls an `AsyncBentoAPI`'s coroutine methods synchronously."""

    def __init__(self, api: AsyncBentoAPI, loop: asyncio.AbstractEventLoop) -> None:
        self.api = api
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.api, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if asyncio.iscoroutine(result):
                return self._loop.run_until_complete(result)
            return result

        return call

    def close(self) -> None:
        self._loop.run_until_complete(self.api.aclose())

    def __repr__(self) -> str:
        return repr(self.api)


class Sleeps(list[float]):
    """Records the waits between retries instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_api(sleeps: Sleeps) -> Iterator[Callable[..., Any]]:
    """`make_api(kind, handler=None, **kwargs)`: a client of that kind.

    With `handler`, requests go to an `httpx.MockTransport` (unit tests of
    HTTP handling only). Jitter is fixed at its maximum (`rand=1.0`).
    """
    made: list[Any] = []

    def make(
        kind: str, handler: Callable[..., Any] | None = None, **kwargs: Any
    ) -> Any:
        kwargs.setdefault("rand", lambda: 1.0)
        if kind == "sync":
            if handler is not None:
                kwargs["transport"] = httpx.MockTransport(handler)
            api: Any = BentoAPI(sleep=sleeps, **kwargs)
        else:
            if handler is not None:
                kwargs["transport"] = httpx.MockTransport(handler)
            api = SyncOverAsync(
                AsyncBentoAPI(sleep=sleeps.async_sleep, **kwargs),
                asyncio.new_event_loop(),
            )
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()
        if isinstance(api, SyncOverAsync):
            api._loop.close()
