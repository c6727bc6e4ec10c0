"""bento_track's pytest plugin: the `bento_events` and `emulator` fixtures.

Installing bento-track registers this module as the pytest plugin named
`bento_track` (the `pytest11` entry point; `-p no:bento_track` turns it
off), so the fixtures are there in any test suite, with nothing to import:

```python
def test_signup_is_tracked(client, bento_events):
    client.post("/signup", data={"email": "ann@example.com"})
    assert bento_events.types() == ["account.signup"]
```

- `bento_events`: `bento_track.testing.capture_events()` for the test: every
  event captured during it, by any client, in memory; no network, no
  credentials; strict mode, so an invalid `track()` fails the test there.
- `emulator`: a Bento emulator running for the session, emptied for each
  test, with the default client and the `BENTO_*` variables pointing at it
  (`bento_track.testing.use_emulator()`); `bento_track.flush(5)`, then
  `emulator.inspect.events()`.

Why a module of its own, outside the `bento_track` package: pytest loads
every installed plugin in every run, and importing anything inside the
package runs `bento_track/__init__.py`, which loads the whole library (its
delivery stack, httpx) so that forked processes find it loaded. This module
imports only pytest, already loaded; bento_track is imported when a test
first asks for one of its fixtures. `benchmarks/bench_plugin.py` measures
what the plugin adds to a run that uses none of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from bento_track.emulator import EmulatorServer
    from bento_track.testing import CapturedEvents

__all__ = ["bento_emulator_server", "bento_events", "emulator"]


@pytest.fixture
def bento_events() -> Iterator[CapturedEvents]:
    """Every event captured during the test (by any client), in order; no
    network, no credentials; strict mode, so an invalid `track()` raises."""
    from bento_track.testing import capture_events

    with capture_events() as events:
        yield events


@pytest.fixture(scope="session")
def bento_emulator_server() -> Iterator[EmulatorServer]:
    """The session's Bento emulator, on a free loopback port (use `emulator`,
    which empties it for each test)."""
    from bento_track.emulator import EmulatorServer

    with EmulatorServer(port=0) as server:
        yield server


@pytest.fixture
def emulator(bento_emulator_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The Bento emulator, emptied, with the default client delivering to it
    (flushed every 50 ms) and the `BENTO_*` variables naming it, so clients
    built from the environment and subprocesses send there too."""
    from bento_track.testing import use_emulator

    with use_emulator(bento_emulator_server) as server:
        yield server
