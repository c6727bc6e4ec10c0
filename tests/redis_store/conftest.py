"""Helpers for the Redis store tests: a real `redis-server` of the session
(Debian's package; `.ci/run` installs it), started on a free port and killed
at the end; each test gets its own key namespace on it. Child processes run
small scripts against the session's emulator; waits have deadlines."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from ..helpers import (  # noqa: F401 (re-exported)
    in_process_group,
    last_json,
    max_in_window,
    posts,
    seqs,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A `redis-server` process of the tests' own: no persistence (a restart
    comes back empty, as Debian's default `appendonly no` does)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        assert binary, (
            "redis-server is not installed (.ci/run installs Debian's package)"
        )
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        log.close()  # the server has its own descriptor
        db = self.client()

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, (
                self.workdir / "redis.log"
            ).read_text()
            try:
                return bool(db.ping())
            except redis.ConnectionError:
                return False

        try:
            wait_until(up, 20)
        finally:
            db.close()
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=5, protocol=2
        )

    def url(self, namespace: str | None = None, **options: object) -> str:
        query = {"namespace": namespace or f"t{uuid.uuid4().hex[:12]}", **options}
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return f"redis://127.0.0.1:{self.port}/0?{params}"

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


def account_prefix(db: redis.Redis, namespace: str, site_uuid: str) -> str:
    """The key prefix of the account of `site_uuid` in `namespace`, found in
    the namespace's registry (the account's digest is the store's)."""
    names = db.hgetall(f"bt:{{{namespace}}}:accounts")
    keys = [k.decode() for k, v in names.items() if v.decode() == site_uuid]
    assert len(keys) == 1, names
    return f"bt:{{{namespace}:{keys[0]}}}:"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's redis-server (never SIGSTOP or kill it: use `own_redis`)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    db = server.client()
    # A server younger than a window holds the first window of each store
    # (a restart must not hand out a second window's worth): the tests'
    # windows are at most 2 s, so let three seconds pass once.
    wait_until(lambda: int(db.info("server")["uptime_in_seconds"]) >= 3, 10)
    db.close()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, to stop, kill or restart."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A store URL on the session's server, in a namespace of this test."""
    return redis_server.url()


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    for name in list(env):
        if name.startswith("BENTO_"):
            del env[name]
    env.update(extra)
    return env


def start_script(
    source: str, *args: object, process_group: int | None = None, **env: str
) -> subprocess.Popen[str]:
    """`source` in a fresh interpreter; with `process_group` (0: a new one),
    in that process group (a simulated host a test can signal as a whole)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(source), *map(str, args)],
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
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def clients() -> Iterator[Callable[..., Any]]:
    """Build clients that are shut down at the end of the test."""
    import bento_track

    made: list[bento_track.Client] = []

    def make(**options: Any) -> bento_track.Client:
        client = bento_track.Client(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(0.5)
