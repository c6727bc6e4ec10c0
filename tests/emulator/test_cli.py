"""`bento-track emulator`: a real process, reached over loopback, stopped by Ctrl-C."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from bento_track.emulator.cli import _is_loopback, add_arguments

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
    assert (0, "x.db", 5, 2.5, ["a@example.com"]) == (
        custom.port,
        custom.db,
        custom.requests_per_minute,
        custom.rate_window,
        custom.authors,
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert loopback is _is_loopback(host)


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
