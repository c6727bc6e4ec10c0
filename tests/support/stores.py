"""Stores of every kind behind one harness, for the store contract
(`tests/store_contract`) and each store's own suite.

A `Stores` opens stores of one kind on one backing (a SQLite file, a Redis
namespace): each store it opens is another process as the store sees it.
Its clock is the store's own: a `FakeClock` the test advances for the
memory and SQLite stores; Redis's for the Redis store (its budget, pause and
batch age run on Redis's `TIME`), where time passes for real, so its policy
is scaled down and its figures are read within `slack` seconds.

Adding a store to the contract is adding a `Stores` here and a parameter of
the `stores` fixture (`tests/store_contract/conftest.py`).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bento_track._core.clock import FakeClock
from bento_track.cli.store import describe
from bento_track.errors import ConfigurationError
from bento_track.stores import MemoryStore, SQLiteStore, Store, StorePolicy
from bento_track.stores.procs import is_alive, start_time
from bento_track.stores.redis import RedisStore, open_redis_store

from ..helpers import wait_until

T = TypeVar("T")
S = TypeVar("S", bound="Stores")

#: the policy of the stores on a FakeClock (time is free: a long window)
POLICY = StorePolicy(
    max_count=10,
    max_bytes=10_000,
    flush_interval=5.0,
    requests_per_window=3,
    window=10.0,
)


def recs(*seqs: int) -> list[bytes]:
    """Encoded events `{"seq": n}`, one per number."""
    return [b'{"seq":%d}' % s for s in seqs]


class Stores:
    """Stores of one kind on one backing, closed at the end of the test.

    Attributes:
        kind: the store's `StoreStats.kind`.
        policy: the policy `open` configures unless given another.
        durable: events outlive the process (`Store.durable`).
        processes: stores opened on the backing are processes apart (memory
            has no other process: `peer` is the store itself).
        slack: how far a figure read on a real clock may trail the time the
            test reasons with (0 on a FakeClock).
        whole_chunks: events are leased and settled in whole chunks (Redis:
            a chunk is one stream entry): one cut by a bisection stays
            leased until both halves are settled, and the half put back is
            written anew, behind the chunks released whole; a dead holder's
            late ack still deletes its chunks (its request was answered:
            they reached Bento).
    """

    kind = ""
    policy = POLICY
    durable = True
    processes = True
    slack = 0.0
    whole_chunks = False

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.made: list[Store] = []
        self._opened: dict[int, tuple[StorePolicy, int | None, dict[str, Any]]] = {}

    def open(
        self,
        policy: StorePolicy | None = None,
        *,
        max_bytes: int | None = None,
        **options: Any,
    ) -> Store:
        """A new process's store on the backing, bound to `max_bytes` of
        events (None: the kind's default bound), configured with `policy` (default: `self.policy`).
        `lease_timeout`: seconds before another process takes over a lease
        its holder does not renew."""
        policy = policy or self.policy
        store = self._open(max_bytes, **options)
        store.configure(policy, self.clock)
        self.made.append(store)
        self._opened[id(store)] = (policy, max_bytes, options)
        return store

    def _open(self, max_bytes: int | None, **options: Any) -> Store:
        raise NotImplementedError

    def peer(self, store: Store) -> Store:
        """Another process on `store`'s backing, opened as `store` was."""
        policy, max_bytes, options = self._opened[id(store)]
        return self.open(policy, max_bytes=max_bytes, **options)

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass on the stores' clock."""
        self.clock.advance(seconds)

    def now(self) -> float:
        """Epoch seconds on the stores' clock (`paused_until` is on it)."""
        return self.clock.time()

    def left(self, seconds: float) -> Any:
        """Equal to a wait the store says is `seconds` from the test's "now"
        (exactly on a FakeClock; on a real clock up to `slack` less)."""
        return pytest.approx(seconds, abs=0.01)

    def since(self, seconds: float) -> Any:
        """Equal to an age the store says is `seconds` at the test's "now"
        (exactly on a FakeClock; on a real clock up to `slack` more)."""
        return pytest.approx(seconds, abs=0.01)

    def eventually(self, predicate: Callable[[], T], seconds: float) -> T:
        """Let `seconds` pass, then `predicate` must hold (on a real clock:
        within `seconds` and a loaded machine's delay); its value."""
        self.advance(seconds)
        value = predicate()
        assert value, f"not so {seconds:g} s later"
        return value

    def die(self, store: Store) -> None:
        """`store`'s process dies holding what it holds (it never renews,
        settles or releases again)."""
        raise NotImplementedError

    def takeover_after(self, lease_timeout: float) -> float:
        """Seconds after which another process takes over the lease of a
        process that `die`d (opened with `lease_timeout`)."""
        return lease_timeout

    def close(self) -> None:
        """Close every store opened."""
        for store in self.made:
            store.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class MemoryStores(Stores):
    """The default store: in this process, for this process alone."""

    kind = "memory"
    durable = False
    processes = False

    def _open(self, max_bytes: int | None, **options: Any) -> Store:
        assert not options, options
        return MemoryStore()

    def open(
        self,
        policy: StorePolicy | None = None,
        *,
        max_bytes: int | None = None,
        **options: Any,
    ) -> Store:
        """A new memory store; its bound is the policy's `max_bytes_held`."""
        policy = policy or self.policy
        if max_bytes is not None:
            policy = replace(policy, max_bytes_held=max_bytes)
        return super().open(policy, max_bytes=max_bytes, **options)

    def peer(self, store: Store) -> Store:
        """The store itself: it has no other process."""
        return store


class SQLiteStores(Stores):
    """SQLite stores on one file (each `SQLiteStore` object is a process,
    with its own holder row)."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _open(self, max_bytes: int | None, **options: Any) -> Store:
        if max_bytes is not None:
            options["max_bytes"] = max_bytes
        store = SQLiteStore(str(self.path), **options)
        store.open()
        return store

    def takeover_after(self, lease_timeout: float) -> float:
        """At once: a dead process on this host is noticed at the next claim."""
        return 0.0

    def die(self, store: Store) -> None:
        """Its holder row now names a process that has exited."""
        assert isinstance(store, SQLiteStore)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        started = start_time(child.pid)
        child.kill()
        child.wait()
        assert not is_alive(child.pid, started)
        assert is_alive(os.getpid(), start_time(os.getpid()))
        with closing(sqlite3.connect(store.path)) as conn, conn:
            conn.execute(
                "UPDATE holders SET pid = ?, started = ? WHERE id = ?",
                (child.pid, started, store._me),
            )


class RedisStores(Stores):
    """Redis stores on one namespace of a real server (each `RedisStore`
    object is a process, a consumer of its own). Time is Redis's: the
    policy's window and batch age are short, and figures are read within
    `slack` seconds of the time the test reasons with."""

    kind = "redis"
    policy = replace(POLICY, window=1.0, flush_interval=2.0)
    slack = 0.5
    whole_chunks = True

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def _open(self, max_bytes: int | None, **options: Any) -> Store:
        if "lease_timeout" in options:
            options["visibility_timeout"] = options.pop("lease_timeout")
        suffix = "".join(f"&{k}={v}" for k, v in options.items())
        store = open_redis_store(self.url + suffix, max_bytes=max_bytes or 2**20)
        assert isinstance(store, RedisStore)
        store.stats_wait = 5.0  # exact figures: a loaded machine may be slow
        return store

    def advance(self, seconds: float) -> None:
        """Real time passes (the store's clock is Redis's)."""
        threading.Event().wait(seconds)

    def now(self) -> float:
        """This host's wall clock (the store moves Redis's times onto it)."""
        return time.time()

    def left(self, seconds: float) -> Any:
        """Between `seconds - slack` and `seconds` (and 10 ms of rounding):
        real time passed since the test's reasoning."""
        return Within(seconds - self.slack, seconds + 0.01)

    def since(self, seconds: float) -> Any:
        """Between `seconds` (less 10 ms of rounding) and `seconds + slack`."""
        return Within(seconds - 0.01, seconds + self.slack)

    def eventually(self, predicate: Callable[[], T], seconds: float) -> T:
        """`predicate` holds within `seconds` and a loaded machine's delay;
        its value."""
        values: list[T] = []

        def holds() -> bool:
            values[:] = [predicate()]
            return bool(values[0])

        wait_until(holds, seconds + 10.0)
        return values[0]

    def die(self, store: Store) -> None:
        """Nothing to do: a dead consumer is one that stops renewing."""


class Within:
    """Equal to the numbers in [low, high] (a figure read on a real clock)."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (int, float)) and self.low <= other <= self.high

    def __repr__(self) -> str:
        return f"a number in [{self.low:g}, {self.high:g}]"


class StoreURL:
    """A durable store by URL, as an app is given one (`store=`): a SQLite
    file of the test's own, or a namespace of the test's own on Redis.

    Attributes:
        kind: "sqlite" or "redis".
    """

    def __init__(self, kind: str, base: str) -> None:
        self.kind = kind
        self._base = base

    def url(self, **options: object) -> str:
        """The URL with `options` in its query (`lease_timeout`: SQLite's
        name, Redis's `visibility_timeout`)."""
        if self.kind == "redis" and "lease_timeout" in options:
            options["visibility_timeout"] = options.pop("lease_timeout")
        query = "&".join(f"{k}={v}" for k, v in options.items())
        if not query:
            return self._base
        return self._base + ("&" if "?" in self._base else "?") + query

    def takeover_after(self, lease_timeout: float) -> float:
        """Seconds after which a killed process's lease is taken over by
        another (SQLite: a dead process on this host, at once)."""
        return 0.0 if self.kind == "sqlite" else lease_timeout

    def depth(self) -> int:
        """Events in the store, read as `bento-track store URL` reads them
        (0 before anything created it)."""
        try:
            return int(describe(self._base)["depth"])
        except ConfigurationError:
            return 0

    def __str__(self) -> str:
        return self._base
