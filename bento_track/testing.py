"""Test helpers for applications that use bento_track, in any test runner,
and what the pytest plugin's fixtures are made of.

Nothing here needs pytest: `capture_events()` and `use_emulator()` are
context managers for unittest, Django's `manage.py test` or a script.

```python
from bento_track.testing import capture_events

class SignupTests(unittest.TestCase):
    def test_signup_is_tracked(self):
        with capture_events() as events:
            self.client.post("/signup", {"email": "ann@example.com"})
        self.assertEqual(events.types(), ["account.signup"])
```

- `capture_events()`: every event captured inside the block, by the default
  client or any other, in order: a list of `Event`s, empty when the block
  starts. No network and no credentials: the default client is swapped for a
  disabled one for the block (and put back after), and events are collected
  from the `event_captured` signal. Strict mode is on inside it: every live
  client (and any client built in the block from the environment, through
  `BENTO_STRICT=1`) raises `InvalidEventError` from `track()` for an invalid
  event, so the test fails where it was tracked.
- `use_emulator(server)`: a running `EmulatorServer`, emptied, with the
  default client and the `BENTO_*` variables pointing at it inside the block,
  for tests that want the real HTTP path: `bento_track.flush(5)`, then
  `server.inspect.events()`.

The pytest plugin that installing bento-track registers (the `pytest11`
entry point `bento_track`, module `_bento_track_pytestplugin`) offers them as
the `bento_events` and `emulator` fixtures. It lives outside this package,
so that a pytest run that uses neither never imports bento_track.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import bento_track._default as default_module

from . import signals
from .client import Client, live_clients
from .config import ENV_VARS
from .events import Event

if TYPE_CHECKING:
    from .emulator import EmulatorServer

__all__ = [
    "CapturedEvents",
    "capture_events",
    "use_default_client",
    "use_emulator",
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


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """`os.environ` updated with `values` inside the block, put back after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def use_emulator(
    server: EmulatorServer, *, flush_interval: float = 0.05
) -> Iterator[EmulatorServer]:
    """Inside the block, `server` (a running `EmulatorServer`) is emptied,
    the default client delivers to it (every `flush_interval` seconds), and
    the `BENTO_*` variables name it, so clients built from the environment
    and subprocesses send there too. Afterwards the variables and the
    previous default client are put back; the block's client is shut down
    (within 2 s)."""
    server.inspect.reset()
    variables = server.client_kwargs()
    with _environment({ENV_VARS[name]: value for name, value in variables.items()}):
        client = Client(
            site_uuid=server.site_uuid,
            publishable_key=server.publishable_key,
            secret_key=server.secret_key,
            base_url=server.base_url,
            flush_interval=flush_interval,
        )
        try:
            with use_default_client(client):
                yield server
        finally:
            client.shutdown(2)
