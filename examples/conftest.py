"""Running the examples the way their first lines say, each in a process of
its own with no `BENTO_*` variables (so each starts its embedded emulator and
prints the inbox URL, which the tests read back to inspect what arrived).
Processes are always killed when a test ends."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bento_track.emulator import Inspector

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
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


def example_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTO_")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def first_line(doc: str | None) -> str:
    """The run command an example's docstring shows."""
    for line in (doc or "").splitlines():
        if line.strip().startswith("python examples/"):
            return line.strip()
    raise AssertionError("the example's docstring shows no run command")


class Example:
    """One example running as its docstring says (`python examples/NAME.py`),
    from the repository root, output to a log file."""

    def __init__(
        self, name: str, log: Path, args: list[str], env: dict[str, str]
    ) -> None:
        self.name = name
        self.log = log
        self._inspectors: list[Inspector] = []
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, f"examples/{name}.py", *args],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The first match of `pattern` in the output, once it is printed."""

        def found() -> re.Match[str] | None:
            match = re.search(pattern, self.output())
            if match is None and self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited ({self.process.returncode}) before "
                    f"printing {pattern!r}:\n{self.output()}"
                )
            return match

        return wait_until(found, timeout, f"{self.name} to print {pattern!r}")  # type: ignore[no-any-return]

    def inspector(self) -> Inspector:
        url = self.wait_for(r"Emulator inbox: (http://127\.0\.0\.1:\d+)/_emulator/")[1]
        inspector = Inspector(url)
        self._inspectors.append(inspector)  # closed by `stop()`
        return inspector

    def wait_http(self, url: str, timeout: float = 30) -> None:
        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.output()}")
            try:
                httpx.get(url, timeout=2, trust_env=False)
            except httpx.TransportError:
                return False
            return True

        wait_until(up, timeout, f"{url} to answer")

    def finish(self, timeout: float = 60) -> int:
        """Wait for a script example to end; its exit code."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running:\n{self.output()}"
            ) from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.process.poll() is None:
            self.process.wait(10)
        for inspector in self._inspectors:
            inspector.close()
        self._out.close()


@pytest.fixture
def run_example(tmp_path: Path) -> Iterator[Callable[..., Example]]:
    """Start examples (`run_example("flask_app", PORT="1234")`); all stopped after."""
    started: list[Example] = []

    def run(name: str, *args: str, **env: str) -> Example:
        example = Example(
            name, tmp_path / f"{name}.log", list(args), example_env(**env)
        )
        started.append(example)
        return example

    yield run
    for example in started:
        example.stop()
