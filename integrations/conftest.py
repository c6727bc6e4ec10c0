"""What every end-to-end suite shares: the emulator (in this process, on a
free loopback port), free ports, and real servers run as subprocesses that
are always stopped (SIGTERM, then SIGKILL) when a test ends.

The servers get the emulator through the `BENTO_*` variables, the way a
deployment gets Bento's credentials.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from bento_track.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A port the OS says is free on 127.0.0.1 (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition"
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


class Server:
    """A server process: started in a session of its own, output to a log
    file, stopped by `stop()` (SIGTERM and a wait) or `kill()`."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        cwd: Path,
        log: Path,
        url: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.url = url
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            self.argv,
            env=env,
            cwd=cwd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_http(self, path: str = "/", timeout: float = 30.0) -> None:
        """Wait until `GET path` answers (any status)."""
        assert self.url is not None

        def answered() -> bool:
            if not self.alive():
                raise AssertionError(
                    f"{self.argv[0]} exited ({self.process.returncode}):\n{self.output()}"
                )
            try:
                httpx.get(self.url + path, timeout=2, trust_env=False)
            except httpx.TransportError:
                return False
            return True

        wait_until(answered, timeout, f"{self.url}{path} to answer")

    def terminate(self) -> None:
        """Send SIGTERM (the graceful path) without waiting."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit; the exit code."""
        self.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.argv[0]} did not exit within {timeout} s of SIGTERM:\n"
                f"{self.output()}"
            ) from None
        return code

    def kill(self) -> None:
        """Kill the process group this server started (its workers too)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)
        else:
            try:  # workers left behind by a dead master
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._log_file.close()


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
