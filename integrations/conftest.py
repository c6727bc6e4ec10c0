"""What every end-to-end suite shares: the emulator (in this process, on a
free loopback port), free ports, and real servers run as subprocesses that
are always killed with their workers when a test ends (`Server`, `free_port`
and `wait_until` are the test suites' own, `tests/support`).

The servers get the emulator through the `BENTO_*` variables, the way a
deployment gets Bento's credentials.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bento_track.emulator import EmulatorServer
from tests.helpers import wait_until
from tests.support.processes import ROOT, Server, free_port

__all__ = ["BIN", "ROOT", "InFlight", "Server", "free_port", "server_env", "wait_until"]

BIN = Path(sys.executable).parent


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    """Start servers; every one is killed when the test ends."""
    started: list[Server] = []

    def start(*args: Any, **kwargs: Any) -> Server:
        server = Server(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, requests_per_minute=10_000, rate_window=60) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """The emulator, emptied for this test."""
    emulator_server.inspect.reset()
    return emulator_server


def server_env(emulator: EmulatorServer, **extra: str) -> dict[str, str]:
    """This process's environment with the emulator as the Bento account
    (and no other `BENTO_*` setting), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTO_")}
    env.update(
        BENTO_SITE_UUID=emulator.site_uuid,
        BENTO_PUBLISHABLE_KEY=emulator.publishable_key,
        BENTO_SECRET_KEY=emulator.secret_key,
        BENTO_BASE_URL=emulator.base_url,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class InFlight:
    """A request held inside the server until released, to send SIGTERM
    while it is in flight: the test app's view creates `entered` and waits
    (with a deadline) for `release`, files in `folder`, which the suite names
    to the server in the `HOLD_DIR` variable."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.entered = folder / "entered"
        self.release = folder / "release"

    def start(self, call: Callable[[], Any]) -> Callable[[], Any]:
        """Run `call` (the request) in a thread; wait until the view holds
        it; return a function that releases it and gives its result."""
        import threading

        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = call()
            except BaseException as exc:  # reported by finish()
                box["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        wait_until(self.entered.exists, 20, "the request to reach the view")

        def finish() -> Any:
            self.release.touch()
            thread.join(30)
            assert not thread.is_alive(), "the held request never finished"
            if "error" in box:
                raise box["error"]
            return box["result"]

        return finish


def events_by_type(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        out.setdefault(event["type"], []).append(event)
    return out
