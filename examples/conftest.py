"""Running the examples the way their first lines say, each in a process of
its own with no `BENTO_*` variables (so each starts its embedded emulator and
prints the inbox URL, which the tests read back to inspect what arrived).
Processes are always killed when a test ends."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bento_track.emulator import Inspector
from tests.helpers import wait_until
from tests.support.processes import Server, free_port

__all__ = ["HERE", "ROOT", "first_line", "free_port", "wait_until"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


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


class Example(Server):
    """One example running as its docstring says (`python examples/NAME.py`),
    from the repository root, output to a log file."""

    def __init__(
        self, name: str, log: Path, args: list[str], env: dict[str, str]
    ) -> None:
        super().__init__(
            [sys.executable, f"examples/{name}.py", *args],
            env=env,
            cwd=ROOT,
            log=log,
            name=name,
        )
        self._inspectors: list[Inspector] = []

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

        return wait_until(found, timeout, f"{self.name} to print {pattern!r}")

    def inspector(self) -> Inspector:
        url = self.wait_for(r"Emulator inbox: (http://127\.0\.0\.1:\d+)/_emulator/")[1]
        inspector = Inspector(url)
        self._inspectors.append(inspector)  # closed by `close()`
        return inspector

    def finish(self, timeout: float = 60) -> int:
        """Wait for a script example to end; its exit code."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running:\n{self.output()}"
            ) from None

    def close(self, grace: float = 10.0) -> None:
        """Stop it (SIGTERM, then the kill) and close its inspectors."""
        super().close(grace)
        for inspector in self._inspectors:
            inspector.close()


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
        example.close()
