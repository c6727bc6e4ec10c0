"""Helpers for the store tests: stores on FakeClocks, child processes that
run small scripts against the session's emulator, waits with deadlines."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bento_track._delivery.clock import FakeClock
from bento_track.queues import Account, SQLiteStore, StorePolicy

from ..helpers import last_json, max_in_window, wait_until  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parents[2]

POLICY = StorePolicy(
    max_count=10,
    max_bytes=10_000,
    flush_interval=5.0,
    requests_per_window=3,
    window=10.0,
)

#: two Bento accounts on one endpoint (tests of a store they share)
ALPHA = Account("https://app.bentonow.com/api/v1", "site-alpha", "pk-alpha")
BRAVO = Account("https://app.bentonow.com/api/v1", "site-bravo", "pk-bravo")


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Callable[..., SQLiteStore]]:
    """SQLite stores on one file (each one a process, as the store sees it),
    configured with `POLICY` (or `policy=`) on a shared FakeClock."""
    made: list[SQLiteStore] = []
    clock = FakeClock()

    def make(
        policy: StorePolicy = POLICY, path: Path | None = None, **options: Any
    ) -> SQLiteStore:
        store = SQLiteStore(str(path or tmp_path / "s.db"), **options)
        store.open()
        store.configure(policy, clock)
        made.append(store)
        return store

    make.clock = clock  # type: ignore[attr-defined]
    yield make
    for store in made:
        store.close()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    for name in list(env):
        if name.startswith("BENTO_"):
            del env[name]
    return env


def run_script(
    source: str, *args: object, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run `source` in a fresh interpreter; its last stdout line is JSON."""
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


def start_script(source: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(source), *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )
