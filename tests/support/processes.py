"""Child processes and ports for the multi-process suites: a fresh
interpreter running a small script against the session's emulator (no
`BENTO_*` variable of the parent leaks in), in a process group when the test
signals a simulated host as a whole; servers run in a session of their own
and killed with everything they started; loopback ports nobody holds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from ..helpers import wait_until

#: the repository (children import bento_track from here)
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port the OS says is free on 127.0.0.1 (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def in_forked_child(child: Callable[[], str]) -> str:
    """Fork this process, run `child` in the child and return the text it
    returned; the test fails if `child` raised (the child then exits 1).
    The child never returns into pytest: it leaves with `os._exit`."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, child().encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        said = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child failed"
    return said


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child: bento_track importable from
    the repository, no `BENTO_*` variable, then `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTO_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def in_process_group(group: int | None) -> dict[str, Any]:
    """`subprocess.Popen` keyword arguments that start the child in process
    group `group` (0: a new group the child leads; None: the caller's).
    `Popen(process_group=...)` is new in Python 3.11; on 3.10 the child joins
    the group itself, between fork and exec."""
    if group is None:
        return {}
    if sys.version_info >= (3, 11):
        return {"process_group": group}
    return {"preexec_fn": partial(os.setpgid, 0, group)}


def _argv(source: str, args: tuple[object, ...]) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(source), *map(str, args)]


def start_script(
    source: str, *args: object, process_group: int | None = None, **env: str
) -> subprocess.Popen[str]:
    """`source` in a fresh interpreter, its three pipes open (text); with
    `process_group` (0: a new one), in that group (a simulated host a test
    can signal as a whole). Use it in `with`: the pipes are closed after."""
    return subprocess.Popen(
        _argv(source, args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(**env),
        cwd=ROOT,
        **in_process_group(process_group),
    )


def run_script(
    source: str, *args: object, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run `source` in a fresh interpreter to its end; it must succeed (its
    last stdout line is usually JSON: `last_json`)."""
    done = subprocess.run(
        _argv(source, args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done


def run_benchmark(
    name: str, *, timeout: float = 120.0, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks.NAME` from the repository, with `env` added to
    this process's environment (the benchmarks read their sizes there); it
    must succeed. Its figures are JSON on its output."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done


def finish(
    children: list[subprocess.Popen[str]], timeout: float = 180.0
) -> list[tuple[str, str]]:
    """Wait for each child (from `start_script`) to end; (stdout, stderr) of
    each, in order. Each must exit 0. Whatever happens, none is left
    running and every pipe is closed."""
    try:
        results = []
        for child in children:
            out, err = child.communicate(timeout=timeout)
            assert child.returncode == 0, err
            results.append((out, err))
        return results
    finally:
        for child in children:
            reap(child)


def reap(process: subprocess.Popen[Any]) -> None:
    """Kill `process` if it still runs, wait for it and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait(30)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def kill_group(process: subprocess.Popen[Any]) -> None:
    """Kill `process` and everything in its process group (a server's
    workers outlive a killed master, and would deliver late into another
    test's emulator), reap it and close its pipes. `process` leads its group
    (`start_new_session=True`, or `process_group=0`)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
    reap(process)


def killed_while_running(
    source: str, *args: object, seconds: float
) -> tuple[list[tuple[int, float]], float]:
    """Run `source` (it prints a line "SEQ TIME" now and then: the last
    event whose call returned, and `time.monotonic()` then) until `seconds`
    after its first line (a loaded machine may take seconds to start an
    interpreter), then SIGKILL it. Returns the (seq, time) marks it printed
    and when it was killed (on the same clock: one host)."""
    with start_script(source, *args) as child:
        # `with`: the child's pipes are closed once it is dead; the kill is
        # in `finally` so that a failing loop never leaves `with` waiting.
        assert child.stdout is not None
        marks: list[tuple[int, float]] = []
        try:
            for line in child.stdout:
                seq, at = line.split()
                marks.append((int(seq), float(at)))
                if time.monotonic() - marks[0][1] > seconds:
                    break
        finally:
            child.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
        child.wait(10)
    assert marks, "the child printed nothing before it was killed"
    return marks, killed_at


def last_json(text: str) -> Any:
    """The JSON document on the last line of a child process's output."""
    return json.loads(text.strip().splitlines()[-1])


class Server:
    """A program run for a test (a web server, an example), in a session of
    its own so that killing it kills its workers too, its output to a log
    file. End it with `stop()` (SIGTERM and a wait: the graceful path the
    test checks), `close()` (SIGTERM, a grace period, then the kill) or
    `kill()`; the fixture that starts it calls `kill()` or `close()` at the
    end of the test, whatever happened.

    Attributes:
        argv: the command.
        url: where it answers HTTP, if it does.
        log: the file its output goes to.
        process: the running process.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        log: Path,
        url: str | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.url = url
        self.log = log
        self.name = name or self.argv[0]
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
        """What it printed so far."""
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        """It has not exited."""
        return self.process.poll() is None

    def wait_http(self, where: str = "/", timeout: float = 30.0) -> None:
        """Wait until `GET where` answers (any status): a path on `url`, or
        a whole URL. Fails at once if the program exits."""
        target = where if "://" in where else f"{self.url}{where}"

        def answered() -> bool:
            if not self.alive():
                raise AssertionError(
                    f"{self.name} exited ({self.process.returncode}):\n{self.output()}"
                )
            try:
                httpx.get(target, timeout=2, trust_env=False)
            except httpx.TransportError:
                return False
            return True

        wait_until(answered, timeout, f"{target} to answer")

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
                f"{self.name} did not exit within {timeout} s of SIGTERM:\n"
                f"{self.output()}"
            ) from None
        return code

    def close(self, grace: float = 10.0) -> None:
        """SIGTERM, up to `grace` seconds to exit, then `kill()`."""
        self.terminate()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """Kill its process group (workers a dead master left behind too),
        reap it and close the log."""
        kill_group(self.process)
        self._log_file.close()
