"""Fixtures for the capture tests: a client whose captured events land in a
list (for unit tests), and a real client delivering to the emulator."""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import bento_track
from bento_track import signals
from bento_track._capture.build import invalid_events
from bento_track._internal import internal_errors
from bento_track.events import Event

with warnings.catch_warnings():
    # Starlette 1.x prefers `httpx2` for its TestClient; plain httpx still works.
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

__all__ = ["Failures", "Recorder", "TestClient", "delivered"]


class Recorder:
    """A disabled client (no delivery) plus the events it captured."""

    def __init__(self) -> None:
        self.client = bento_track.Client(disabled=True)
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def receive(self, sender: Any, *, event: Event, **_: Any) -> None:
        with self._lock:
            self.events.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    with signals.event_captured.connected_to(rec.receive, sender=rec.client):
        yield rec
    rec.client.shutdown(0)


class Failures:
    """How many internal errors and invalid events were counted in a test."""

    def __init__(self) -> None:
        self._internal = internal_errors.count
        self._invalid = invalid_events.count

    @property
    def internal(self) -> int:
        return internal_errors.count - self._internal

    @property
    def invalid(self) -> int:
        return invalid_events.count - self._invalid


@pytest.fixture
def failures() -> Failures:
    return Failures()


@pytest.fixture
def delivering(
    emulator: Any, clients: Callable[..., bento_track.Client]
) -> Callable[..., bento_track.Client]:
    """Build real clients that deliver to the emulator (`clients`: shut down
    at the end of the test)."""
    emulator.inspect.set_rate_limit(10_000, 60.0)

    def make(**options: Any) -> bento_track.Client:
        return clients(
            **{**emulator.client_kwargs(), "flush_interval": 0.05, **options}
        )

    return make


def delivered(emulator: Any, client: bento_track.Client) -> list[dict[str, Any]]:
    """Flush `client` (with a deadline) and return what the emulator accepted."""
    assert client.flush(10), client.stats()
    return list(emulator.inspect.events())


@contextlib.contextmanager
def wsgiref_server(app: Any) -> Iterator[str]:
    """`app` under `wsgiref.simple_server` on loopback (quiet, in a thread);
    yields its base URL and stops it afterwards."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
