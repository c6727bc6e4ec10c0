"""`bento-track emulator`: a real process, reached over loopback, stopped by Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bento_track.emulator.cli import add_arguments
from bento_track.emulator.hosts import is_loopback

from .conftest import UA


def test_arguments_and_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    defaults = parser.parse_args([])
    custom = parser.parse_args(
        [
            "--port",
            "0",
            "--db",
            "x.db",
            "--requests-per-minute",
            "5",
            "--rate-window",
            "2.5",
            "--author",
            "a@example.com",
            "--allow-host",
            "bento",
            "--allow-host",
            "web",
        ]
    )

    assert ("127.0.0.1", 8025, ":memory:", 100, 60.0, None) == (
        defaults.host,
        defaults.port,
        defaults.db,
        defaults.requests_per_minute,
        defaults.rate_window,
        defaults.authors,
    )
    assert (0, "x.db", 5, 2.5, ["a@example.com"], ["bento", "web"]) == (
        custom.port,
        custom.db,
        custom.requests_per_minute,
        custom.rate_window,
        custom.authors,
        custom.allowed_hosts,
    )
    assert [] == defaults.allowed_hosts


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert loopback is is_loopback(host)


def _read_until(stream, pattern: str, timeout: float = 15.0) -> str:
    """Lines from `stream` until one matches `pattern` (a reader thread keeps
    the deadline even when the process prints nothing)."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stream:
            seen.append(line)
            if re.search(pattern, line):
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout), "".join(seen)
    return "".join(seen)


def test_runs_until_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "emulator.sqlite3"
    # `with`: the stdout and stderr pipes are closed however the test ends.
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bento_track",
            "emulator",
            "--port",
            "0",
            "--db",
            str(db),
            "--site-uuid",
            "cli-site",
            "--secret-key",
            "sk_cli_secret",
            "--requests-per-minute",
            "7",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            out = _read_until(proc.stdout, r"Ctrl-C")
            base = re.search(r"export BENTO_BASE_URL=(\S+)", out).group(1)
            response = httpx.post(
                base + "/batch/events",
                params={"site_uuid": "cli-site"},
                auth=("pk_emulator", "sk_cli_secret"),
                headers={"User-Agent": UA},
                json={"events": [{"type": "t", "email": "a@example.com"}]},
                trust_env=False,
            )
            limit = httpx.get(
                base.replace("/api/v1", "/_emulator/rate-limit"), trust_env=False
            )
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(10)
            finally:
                proc.kill()
            stderr = proc.stderr.read()

    assert re.match(r"http://127\.0\.0\.1:\d+/api/v1$", base)
    assert "export BENTO_SITE_UUID=cli-site" in out
    assert "sk_cli_secret" not in out + stderr  # a chosen secret is not echoed
    assert 200 == response.status_code
    assert 7 == limit.json()["requests"]
    assert 0 == code, stderr
    assert db.exists()


@contextlib.contextmanager
def running(*args: str, env: dict[str, str] | None = None) -> Iterator[RunningCLI]:
    """`bento-track emulator --port 0 ARGS` until its banner is printed;
    stopped with Ctrl-C (SIGINT) when the block ends."""
    with subprocess.Popen(
        [sys.executable, "-m", "bento_track", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    ) as proc:
        cli = RunningCLI()
        try:
            cli.out = _read_until(proc.stdout, r"Ctrl-C")
            base = re.search(r"export BENTO_BASE_URL=(\S+)", cli.out).group(1)
            cli.url = base.removesuffix("/api/v1")
            yield cli
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                cli.code = proc.wait(10)
            finally:
                proc.kill()
            cli.err = proc.stderr.read()


@dataclass
class RunningCLI:
    """What `running` saw: the banner, the root URL, then (once stopped)
    the exit status and stderr."""

    out: str = ""
    url: str = ""
    code: int | None = None
    err: str = ""

    def status(self, path: str, host: str) -> int:
        """The status of `GET path` sent with `Host: host`; a refusal shows
        no address."""
        response = httpx.get(self.url + path, headers={"Host": host}, trust_env=False)
        assert "@" not in response.text or response.status_code == 200
        return response.status_code


def test_allow_host_and_the_environment_name_more_hosts() -> None:
    with running(
        "--host",
        "0.0.0.0",
        "--allow-host",
        "bento-emulator",
        "--allow-host",
        "Mail.Local",
        env={"BENTO_EMULATOR_ALLOWED_HOSTS": "web, worker"},
    ) as cli:
        statuses = {
            host: cli.status("/_emulator/subscribers", host)
            for host in ("bento-emulator:8025", "mail.local", "web", "worker", "evil")
        }
        summary = httpx.get(cli.url + "/_emulator/", trust_env=False).json()
    stderr = cli.err
    assert 0 == cli.code, stderr

    assert {
        "bento-emulator:8025": 200,
        "mail.local": 200,
        "web": 200,
        "worker": 200,
        "evil": 421,
    } == statuses
    assert ["web", "worker", "bento-emulator", "mail.local"] == summary["allowed_hosts"]
    # Bound to every address, it prints the loopback URL, which always works.
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", cli.url)
    assert "allowed hosts: web, worker, bento-emulator, mail.local" in cli.out
    assert "export BENTO_ALLOW_INSECURE_HTTP=1" in cli.out
    assert 1 == stderr.count("warning: binding 0.0.0.0, not loopback")
    assert "--allow-host NAME" not in stderr  # names were given


def test_binding_every_address_without_allow_host_says_how_once() -> None:
    with running("--host", "0.0.0.0") as cli:
        answered = cli.status("/_emulator/", f"localhost:{cli.url.rsplit(':', 1)[1]}")
        refused = cli.status("/_emulator/", "bento-emulator")
    stderr = cli.err
    assert 0 == cli.code, stderr

    assert (200, 421) == (answered, refused)
    assert 1 == stderr.count(
        "--allow-host NAME (repeatable) or BENTO_EMULATOR_ALLOWED_HOSTS=NAME,NAME"
    )
    assert "none yet: add --allow-host NAME" in cli.out


def test_a_loopback_emulator_says_nothing_about_hosts() -> None:
    with running() as cli:
        refused = cli.status("/_emulator/subscribers", "evil.example")
    stderr = cli.err
    assert 0 == cli.code, stderr

    assert 421 == refused
    assert "allow-host" not in stderr + cli.out
    assert "BENTO_ALLOW_INSECURE_HTTP" not in cli.out


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--allow-host", "bento:8025"], {}, "without a port"),
        (["--allow-host", "http://bento"], {}, "is not a host name"),
        ([], {"BENTO_EMULATOR_ALLOWED_HOSTS": "ok, not/ok"}, "'not/ok'"),
    ],
)
def test_bad_allowed_hosts_exit_2(
    args: list[str], env: dict[str, str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bento_track", "emulator", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )
    assert 2 == done.returncode
    assert message in done.stderr


def test_invalid_settings_exit_2() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bento_track",
            "emulator",
            "--port",
            "0",
            "--rate-window",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert 2 == done.returncode
    assert "rate_window" in done.stderr
