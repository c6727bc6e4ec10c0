"""Child processes and ports for the multi-process suites: a fresh
interpreter running a small script against the session's emulator (no
`BENTO_*` variable of the parent leaks in), in a process group when the test
signals a simulated host as a whole, and loopback ports nobody holds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path
from typing import Any

#: the repository (children import bento_track from here)
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port the OS says is free on 127.0.0.1 (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def last_json(text: str) -> Any:
    """The JSON document on the last line of a child process's output."""
    return json.loads(text.strip().splitlines()[-1])
