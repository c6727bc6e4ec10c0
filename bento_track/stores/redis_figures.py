"""A Redis store's figures: read from Redis (`read_figures`, read only), and
given without ever waiting on Redis (`FiguresReader`).

`stats()` is asked by health checks and exporters, which must not hang with
Redis: a reading runs in a thread of its own, on a connection of its own,
and a caller waits at most `stats_wait` for it (a healthy Redis answers in
about a millisecond). A Redis that does not answer in time gets the figures
last read, marked `stale`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .account import Account
from .base import AccountStats, StoreStats
from .redis_breaker import RedisUnavailable
from .redis_calls import Scripts, StatsReply, text
from .redis_keys import account_keys, legacy_keys, registry_key

__all__ = [
    "FiguresReader",
    "accounts",
    "no_figures",
    "read_figures",
    "stats_from",
    "time_offset",
]

#: figures read this recently are current (not `stale`)...
_FRESH_FOR = 1.0
#: ...unless a reading has been out this long: Redis is slow or hung
_SLOW_READING = 0.1


def time_offset(reply: StatsReply) -> float:
    """This host's clock minus Redis's, from a STATS answer."""
    return time.time() - reply.now / 1000.0


def stats_from(
    reply: StatsReply, location: str, max_bytes: int, offset: float
) -> StoreStats:
    """`StoreStats` from a STATS answer (times moved onto this host's clock
    by `offset`)."""
    r = reply
    return StoreStats(
        kind="redis",
        location=location,
        depth=max(0, r.n),
        nbytes=max(0, r.b),
        max_bytes=max_bytes,
        leased=max(0, r.n - r.wn),
        leases=r.holders,
        oldest_age=max(0.0, (r.now - r.oldest) / 1000.0) if r.oldest >= 0 else None,
        budget_used=r.used,
        budget_limit=r.limit,
        budget_window=r.window / 1000.0,
        paused_until=r.paused / 1000.0 + offset if r.paused > r.now else None,
        reclaimed=r.reclaimed,
        dropped=r.dropped,
        processes=r.processes,
    )


def no_figures(location: str, max_bytes: int, site_uuid: str) -> StoreStats:
    """Before any reading: nothing known (stale)."""
    return StoreStats(
        kind="redis",
        location=location,
        depth=0,
        nbytes=0,
        max_bytes=max_bytes,
        leased=0,
        leases=0,
        oldest_age=None,
        budget_used=0,
        budget_limit=0,
        budget_window=0.0,
        paused_until=None,
        site_uuid=site_uuid,
        stale=True,
    )


def _account_stats(site_uuid: str, part: StoreStats) -> AccountStats:
    return AccountStats(
        site_uuid=site_uuid,
        depth=part.depth,
        nbytes=part.nbytes,
        oldest_age=part.oldest_age,
        budget_used=part.budget_used,
        budget_limit=part.budget_limit,
        budget_window=part.budget_window,
        paused_until=part.paused_until,
    )


def accounts(client: Any, namespace: str) -> dict[str, str]:
    """The namespace's registry: account digest -> `site_uuid`."""
    names = client.hgetall(registry_key(namespace))
    return {text(k): text(v) for k, v in names.items()}


def read_figures(
    scripts: Scripts,
    namespace: str,
    account: Account | None,
    location: str,
    max_bytes: int,
    budget: tuple[int, float] | None = None,
) -> StoreStats:
    """A namespace's figures, read now (two round trips, read only): of
    `account`'s partition with every account's in `accounts`, or with None
    of the whole namespace (budget and pause then only per account). An
    account shows in `accounts` while it has events, a pause or processes
    seen in the last minute. `budget` (requests, window): the account's
    budget to show until a request granted on Redis records it.

    Raises:
        redis.RedisError: Redis cannot answer.
    """
    client = scripts.client
    legacy = legacy_keys(namespace)
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(registry_key(namespace))
    pipe.hget(legacy.tot, "n")
    pipe.exists(legacy.q)
    names, legacy_n, legacy_exists = pipe.execute()
    known = {text(k): text(v) for k, v in names.items()}
    if account is not None:
        known.setdefault(account.key, account.site_uuid)
    order = sorted(known, key=lambda key: (known[key], key))
    pipe = client.pipeline(transaction=False)
    for key in order:
        scripts.queue_stats(pipe, account_keys(namespace, key))
    replies = [StatsReply.decode(raw) for raw in pipe.execute()] if order else []
    parts = {
        key: stats_from(reply, location, max_bytes, time_offset(reply))
        for key, reply in zip(order, replies, strict=True)
    }
    shown = tuple(
        _account_stats(known[key], part)
        for key, part in parts.items()
        if part.depth or part.paused_until is not None or part.processes
    )
    unassigned = max(0, int(legacy_n or 0)) if legacy_exists else 0
    if account is not None:
        mine = parts[account.key]
        if budget is not None and not mine.budget_limit:
            mine = replace(mine, budget_limit=budget[0], budget_window=budget[1])
        return replace(
            mine, site_uuid=account.site_uuid, accounts=shown, unassigned=unassigned
        )
    every = list(parts.values())
    ages = [p.oldest_age for p in every if p.oldest_age is not None]
    return StoreStats(
        kind="redis",
        location=location,
        depth=sum(p.depth for p in every),
        nbytes=sum(p.nbytes for p in every),
        max_bytes=max_bytes,
        leased=sum(p.leased for p in every),
        leases=sum(p.leases for p in every),
        oldest_age=max(ages) if ages else None,
        budget_used=0,
        budget_limit=0,
        budget_window=0.0,
        paused_until=None,
        reclaimed=sum(p.reclaimed for p in every),
        dropped=sum(p.dropped for p in every),
        processes=sum(p.processes for p in every),
        accounts=shown,
        unassigned=unassigned,
    )


@dataclass
class _Reading:
    """A reading of the figures, in a thread of its own."""

    started: float  # time.monotonic()
    done: threading.Event


class FiguresReader:
    """A store's figures, read in the background (see the module docstring).

    Args:
        read: reads the figures now on the scripts given (the reader's own
            connection); raises `redis.RedisError`.
        connect: a new connection for readings.
        errors: redis-py's `redis.exceptions`.
        usable: whether Redis may be called now (the breaker).
        empty: the figures before any reading.
    """

    def __init__(
        self,
        read: Callable[[Scripts], StoreStats],
        connect: Callable[[], Any],
        errors: Any,
        usable: Callable[[], bool],
        empty: StoreStats,
    ) -> None:
        self._read = read
        self._connect = connect
        self._errors = errors
        self._usable = usable
        self._figures = empty
        #: time.monotonic() of the last reading that succeeded (None: none)
        self._figures_at: float | None = None
        self._failed = False
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        """State of this process (again in a forked child)."""
        self._pid = os.getpid()
        # never under the store's lock (a worker call may hold it while
        # Redis hangs)
        self._lock = threading.Lock()
        self._reading: _Reading | None = None
        self._scripts: Scripts | None = None

    def read(self) -> StoreStats:
        """The figures, read now (blocking up to the socket timeout).

        Raises:
            RedisUnavailable: Redis cannot answer now.
        """
        with self._lock:
            if self._pid != os.getpid():
                self._scripts = None
            if self._scripts is None:
                self._scripts = Scripts(self._connect())
            scripts = self._scripts
        try:
            figures = self._read(scripts)
        except self._errors.RedisError as exc:
            raise RedisUnavailable(str(exc) or type(exc).__name__) from None
        self._figures = figures
        self._figures_at = time.monotonic()
        self._failed = False
        return figures

    def current(self, wait: float) -> StoreStats:
        """The figures, waiting at most `wait` seconds for a fresh reading:
        marked `stale` unless read in the last second with no reading out
        for long since (a slow or hung Redis) and no failure."""
        called = time.monotonic()
        deadline = called + wait
        while True:
            with self._lock:
                if self._pid != os.getpid():
                    self._reading = None
                    self._scripts = None
                reading = self._reading
                if reading is None or reading.done.is_set():
                    if reading is not None and reading.started >= called:
                        break  # read during this call
                    reading = self._start()
                    if reading is None:
                        break  # Redis is known to be unavailable
                elif called - reading.started > _SLOW_READING:
                    break  # out for long: Redis is slow or hung, never wait
                # else: one is out since moments ago: wait for it, then for
                # one of this call's
            left = deadline - time.monotonic()
            if left <= 0 or not reading.done.wait(left):
                break
        return replace(self._figures, stale=self._stale())

    def prime(self) -> None:
        """Start a first reading in the background, if none was made: the
        first `current()` then has figures to give at once."""
        if self._figures_at is None:
            with self._lock:
                self._start()

    def _start(self) -> _Reading | None:
        """A new reading (under `_lock`), unless one is out already or Redis
        is known to be unavailable."""
        current = self._reading
        if current is not None and not current.done.is_set():
            return current
        if self._closed or not self._usable():
            return None
        reading = self._reading = _Reading(time.monotonic(), threading.Event())
        threading.Thread(
            target=self._run,
            args=(reading,),
            name="bento_track.redis-stats",
            daemon=True,
        ).start()
        return reading

    def _run(self, reading: _Reading) -> None:
        """A reading in its own thread."""
        try:
            self.read()
        except Exception:  # said by `stale`; the worker logs Redis's state
            self._failed = True
        finally:
            reading.done.set()
            if self._closed:  # closed meanwhile: the last user
                self.drop_connection()

    def _stale(self) -> bool:
        at = self._figures_at
        if at is None or self._failed or not self._usable():
            return True
        now = time.monotonic()
        reading = self._reading
        if (
            reading is not None
            and not reading.done.is_set()
            and now - reading.started > _SLOW_READING
        ):
            return True
        return now - at > _FRESH_FOR

    def close(self) -> None:
        """No more readings; the connection is closed now, or by a reading
        still out when it ends (Redis hangs: never wait for it)."""
        self._closed = True
        with self._lock:
            reading = self._reading
        if reading is None or reading.done.is_set():
            self.drop_connection()

    def drop_connection(self) -> None:
        """Close the readings' connection (the next reading opens another)."""
        with self._lock:
            scripts, self._scripts = self._scripts, None
        if scripts is not None:
            try:
                scripts.client.close()
            except Exception:
                pass

    def after_fork(self) -> Any:
        """In a forked child: forget the parent's reading and connection;
        return that connection (never closed here: it is the parent's)."""
        scripts = self._scripts
        self._reset()
        return None if scripts is None else scripts.client
