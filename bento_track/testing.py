"""Test helpers for applications that use bento_track, and their pytest plugin.

Installed with the package and registered through the `pytest11` entry point,
so the fixtures are there in any test suite of a project that has
bento_track installed, with nothing to import:

```python
def test_signup_is_tracked(client, bento_events):
    client.post("/signup", data={"email": "ann@example.com"})
    assert [e.type for e in bento_events] == ["account.signup"]
    assert bento_events[0].email == "ann@example.com"
```

- `bento_events`: every event captured during the test, by the default client
  or any other, in order: a list of `Event`s, empty when the test starts. No
  network and no credentials: the default client is swapped for a disabled
  one for the test (and put back after), and events are collected from the
  `event_captured` signal. Strict mode is on for the test: every live client
  (and any client built during the test from the environment, through
  `BENTO_STRICT=1`) raises `InvalidEventError` from `track()` for an invalid
  event, so the test fails where it was tracked.
- `emulator`: a running Bento emulator (one per test session, reset for each
  test) with the default client and the `BENTO_*` variables pointing at it,
  for tests that want the real HTTP path: `bento_track.flush(5)`, then
  `emulator.inspect.events()`.

`capture_events()` is the same capture as a context manager, for unittest or
scripts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

import bento_track._default as default_module

from . import signals
from .client import Client, live_clients
from .config import ENV_VARS
from .events import Event

if TYPE_CHECKING:
    from .emulator import EmulatorServer

__all__ = [
    "CapturedEvents",
    "bento_emulator_server",
    "bento_events",
    "capture_events",
    "emulator",
    "use_default_client",
]

_STRICT_VAR = ENV_VARS["strict"]


class CapturedEvents(list[Event]):
    """The events captured so far, oldest first (a plain list of `Event`s,
    appended to by whichever thread tracked them), with two conveniences."""

    def types(self) -> list[str]:
        """The event types, in order."""
        return [event.type for event in self]

    def of_type(self, type: str) -> list[Event]:
        """The events of one type, in order."""
        return [event for event in self if event.type == type]


@contextmanager
def use_default_client(client: Client) -> Iterator[Client]:
    """Make `client` the process default (`bento_track.track()` and the
    middlewares without `client=`) inside the block; the previous default,
    if any, is put back afterwards, untouched. A default installed by the
    block's code (`bento_track.init()`) is shut down (at once) when it ends."""
    with default_module._lock:
        previous, default_module._client = default_module._client, client
    try:
        yield client
    finally:
        with default_module._lock:
            current, default_module._client = default_module._client, previous
        if current is not None and current is not client and current is not previous:
            current.shutdown(0)


@contextmanager
def capture_events(*, strict: bool = True) -> Iterator[CapturedEvents]:
    """Collect every event captured inside the block, by any client, into the
    yielded list; the default client is a disabled one meanwhile (no network,
    no credentials). With `strict` (the default), every live client and every
    client built from the environment inside the block raises
    `InvalidEventError` from `track()` for an invalid event."""
    events = CapturedEvents()

    def receive(sender: Any, **kwargs: Any) -> None:
        event = kwargs.get("event")
        if isinstance(event, Event):
            events.append(event)

    replacement = Client(disabled=True, strict=strict, environ={})
    saved_strict = [(client, client.strict) for client in live_clients()]
    saved_var = os.environ.get(_STRICT_VAR)
    if strict:
        os.environ[_STRICT_VAR] = "1"
        for client, _ in saved_strict:
            client.strict = True
    signals.event_captured.connect(receive, weak=False)
    try:
        with use_default_client(replacement):
            yield events
    finally:
        signals.event_captured.disconnect(receive)
        for client, was in saved_strict:
            client.strict = was
        if saved_var is None:
            os.environ.pop(_STRICT_VAR, None)
        else:
            os.environ[_STRICT_VAR] = saved_var
        replacement.shutdown(0)


# -- the pytest plugin -------------------------------------------------------------


@pytest.fixture
def bento_events() -> Iterator[CapturedEvents]:
    """Every event captured during the test (by any client), in order; no
    network, no credentials; strict mode, so an invalid `track()` raises."""
    with capture_events() as events:
        yield events


@pytest.fixture(scope="session")
def bento_emulator_server() -> Iterator[EmulatorServer]:
    """The session's Bento emulator, on a free loopback port (use `emulator`,
    which resets it for each test)."""
    from .emulator import EmulatorServer

    with EmulatorServer(port=0) as server:
        yield server


@pytest.fixture
def emulator(
    bento_emulator_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmulatorServer]:
    """The Bento emulator, emptied, with the default client delivering to it
    (flushed every 50 ms) and the `BENTO_*` variables naming it, so clients
    built from the environment and subprocesses send there too."""
    server = bento_emulator_server
    server.inspect.reset()
    for name, value in server.client_kwargs().items():
        monkeypatch.setenv(ENV_VARS[name], value)
    client = Client(
        site_uuid=server.site_uuid,
        publishable_key=server.publishable_key,
        secret_key=server.secret_key,
        base_url=server.base_url,
        flush_interval=0.05,
    )
    try:
        with use_default_client(client):
            yield server
    finally:
        client.shutdown(2)
