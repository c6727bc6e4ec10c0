"""Two Bento accounts, each with an emulator of its own for each test (its
own site and keys: an event sent with the other account's keys gets 401
there), and the stores they share: one SQLite file, or one namespace on the
session's redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from bento_track.emulator import EmulatorServer

ACCOUNTS = ("alpha", "bravo")


@pytest.fixture
def emulators() -> Iterator[dict[str, EmulatorServer]]:
    """Both accounts' emulators, of this test alone (a process of an earlier
    test can never deliver into them), with a rate limit no test reaches."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(
                EmulatorServer(
                    port=0,
                    site_uuid=f"site-{name}",
                    publishable_key=f"pk-{name}",
                    secret_key=f"sk-{name}",
                    requests_per_minute=10_000,
                )
            )
            for name in ACCOUNTS
        }


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One store both accounts are given (a shared deploy template)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    return str(request.getfixturevalue("redis_url"))
