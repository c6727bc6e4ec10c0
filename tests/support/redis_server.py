"""A `redis-server` process of the tests' own (Debian's package; `.ci/run`
installs it) on a free port, and where a store's keys are in it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import redis

from ..helpers import wait_until
from .processes import free_port


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
        #: `time.monotonic()` when the process was last started (Redis's
        #: uptime counts from a moment later)
        self.started_at = 0.0

    def start(self) -> RedisServer:
        """Start it (again, on the same port after `kill`) and wait until it
        answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "redis.log", "ab") as log:
            # the server has its own descriptor once started
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
        self.started_at = time.monotonic()
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
        """A connection of the test's own (close it)."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=5, protocol=2
        )

    def url(self, namespace: str | None = None, **options: object) -> str:
        """A store URL on this server, in `namespace` (a fresh one if None)."""
        query = {"namespace": namespace or f"t{uuid.uuid4().hex[:12]}", **options}
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return f"redis://127.0.0.1:{self.port}/0?{params}"

    def signal(self, sig: int) -> None:
        """Send `sig` (SIGSTOP: hung; SIGCONT: back)."""
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """Stop it for good (a stopped one is continued first)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


def namespace_of(url: str) -> str:
    """The `namespace` option of a store URL."""
    return url.partition("namespace=")[2].partition("&")[0]


def account_prefix(db: redis.Redis, namespace: str, site_uuid: str) -> str:
    """The key prefix of the account of `site_uuid` in `namespace`, found in
    the namespace's registry (the account's digest is the store's)."""
    names: dict[bytes, bytes] = db.hgetall(f"bt:{{{namespace}}}:accounts")  # type: ignore[assignment]
    keys = [k.decode() for k, v in names.items() if v.decode() == site_uuid]
    assert len(keys) == 1, names
    return f"bt:{{{namespace}:{keys[0]}}}:"
