"""The Redis store's scripts behind typed calls.

Each Lua script (`redis_scripts`, `redis_scripts_reading`: what each one
does) is a method of `Scripts` taking named, typed arguments, and each
answer with more than one field is decoded here, once, into a named reply:
the store and the tools never index a script's answer by position. Times
cross the boundary as seconds; the scripts count in integer milliseconds.

Errors are redis-py's own (`redis.RedisError`): the caller decides what an
unavailable Redis means (the store's breaker, a tool's message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, NamedTuple

from .._core.records import Record
from . import redis_scripts as lua
from . import redis_scripts_reading as reading
from .base import StorePolicy
from .chunks import size_of
from .redis_keys import Keys

__all__ = [
    "DEFAULT_SOCKET_TIMEOUT",
    "AcquireReply",
    "AdoptReply",
    "ClaimReply",
    "ClaimedChunk",
    "EnqueueReply",
    "Scripts",
    "StatsReply",
    "connect",
    "load_lazy_imports",
    "ms",
    "text",
]

#: seconds any Redis call may take (redis-py 8's default retries stall about
#: a minute on a hung server)
DEFAULT_SOCKET_TIMEOUT = 2.0
#: seconds between connection health checks of an idle pooled connection
_HEALTH_CHECK_INTERVAL = 10


def connect(connection: dict[str, Any], name: str) -> Any:
    """A `redis.Redis` for the store's calls (no I/O until the first one):
    `connection` (a `RedisURL`'s, plus options) over the store's timeouts,
    named `name` in `CLIENT LIST`. No retries of redis-py's own: the
    store's breaker retries, and redis-py's would multiply the wait on a
    hung server. Answers are read as RESP2, as the scripts' replies are
    decoded."""
    import redis

    options: dict[str, Any] = {
        "socket_timeout": DEFAULT_SOCKET_TIMEOUT,
        "socket_connect_timeout": DEFAULT_SOCKET_TIMEOUT,
        "health_check_interval": _HEALTH_CHECK_INTERVAL,
        "client_name": name,
    }
    options.update(connection)
    options["retry"] = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
    options["protocol"] = 2
    return redis.Redis(**options)


def load_lazy_imports() -> None:
    """Import now what redis-py's first connection would import lazily:
    `redis.Redis()` reads redis-py's own version through
    `importlib.metadata`, whose first read imports more modules (on 3.13,
    `importlib.metadata._adapters` and `email.message`). A store calls this
    in the thread that makes it, so that no delivery thread is ever half-way
    through an import when a fork (gunicorn `--preload`) copies it: the
    child would inherit a half-initialized module and never connect
    (tests/delivery/test_fork.py)."""
    import redis  # noqa: F401  (the optional extra)

    try:
        metadata.version("redis")
    except metadata.PackageNotFoundError:
        pass  # redis-py run from a source tree: it reads no metadata either


def ms(seconds: float) -> int:
    """`seconds` as the scripts' whole milliseconds (at least 1)."""
    return max(1, int(round(seconds * 1000)))


def text(value: Any) -> str:
    """A Redis answer (bytes under RESP2) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class EnqueueReply:
    """What ENQUEUE answered.

    Attributes:
        kept: how many of the chunks were written, in order (the rest did
            not fit the bound).
        applied_before: this write's sequence number was applied by an
            earlier call whose answer was lost: nothing was written now.
        outstanding: this process's events in the store.
        created: the write created the stream (a new or lost partition:
            the account is to be named in the registry).
        dropped: the records of waiting chunks deleted to make room
            (`drop_oldest`).
    """

    kept: int
    applied_before: bool = False
    outstanding: int = 0
    created: bool = False
    dropped: tuple[Record, ...] = ()

    @classmethod
    def decode(cls, raw: list[Any]) -> EnqueueReply:
        """From the script's answer: {kept (-1: applied before), outstanding,
        created, data of each deleted chunk...}."""
        kept = int(raw[0])
        if kept < 0:
            return cls(kept=0, applied_before=True)
        dropped = tuple(r for data in raw[3:] for r in bytes(data).split(b"\n"))
        return cls(kept, False, int(raw[1]), bool(int(raw[2])), dropped)


class ClaimedChunk(NamedTuple):
    """One chunk of a claimed batch: its stream id, its records, and the
    process that put it."""

    sid: str
    records: list[Record]
    origin: str


@dataclass(frozen=True)
class ClaimReply:
    """What CLAIM answered: a batch, or how long to wait.

    Attributes:
        chunks: the batch taken, with its permit spent, oldest first
            (empty: nothing was taken).
        wait: when nothing was taken, seconds until a claim is worth making
            again; None when nothing waits. 0.0 with a batch.
        waiting: events waiting (not held) when the claim was made.
        nbytes: their size.
        budget_bound: the wait is the budget's or a pause's.
    """

    chunks: tuple[ClaimedChunk, ...] = ()
    wait: float | None = None
    waiting: int = 0
    nbytes: int = 0
    budget_bound: bool = False

    @classmethod
    def decode(cls, raw: list[Any]) -> ClaimReply:
        """From the script's answer: {0} (nothing waits), {1, wait ms,
        waiting, bytes, bound (1/0)} or {2, waiting, bytes, then (id, data,
        n, origin) per chunk}."""
        kind = int(raw[0])
        if kind == 0:
            return cls()
        if kind == 1:
            return cls(
                wait=int(raw[1]) / 1000.0,
                waiting=int(raw[2]),
                nbytes=int(raw[3]),
                budget_bound=bool(int(raw[4])),
            )
        flat = raw[3:]
        chunks = tuple(
            ClaimedChunk(
                text(flat[i]), bytes(flat[i + 1]).split(b"\n"), text(flat[i + 3])
            )
            for i in range(0, len(flat), 4)
        )
        return cls(chunks, 0.0, int(raw[1]), int(raw[2]))


@dataclass(frozen=True)
class AcquireReply:
    """What ACQUIRE answered: the permit was `granted`, or `wait` seconds
    until one may be."""

    granted: bool
    wait: float = 0.0

    @classmethod
    def decode(cls, raw: list[Any]) -> AcquireReply:
        """From the script's answer: {0} or {1, wait ms, bound to a pause}."""
        if int(raw[0]) == 0:
            return cls(True)
        return cls(False, int(raw[1]) / 1000.0)


@dataclass(frozen=True)
class AdoptReply:
    """What one ADOPT step answered.

    Attributes:
        moved: events moved into the adopting account.
        chunks: chunks moved.
        last: the id of the last chunk looked at ('' : none is left to look
            at; the next step starts after it otherwise).
        left: unassigned events left behind (held by live processes).
    """

    moved: int
    chunks: int
    last: str
    left: int

    @classmethod
    def decode(cls, raw: list[Any]) -> AdoptReply:
        """From the script's answer: {moved, chunks, last id, left}."""
        return cls(int(raw[0]), int(raw[1]), text(raw[2]), int(raw[3]))


class StatsReply(NamedTuple):
    """What STATS answered about one partition (times in server ms).

    Attributes:
        now: the server's time.
        n / b: events and bytes in the stream.
        wn / wb: of them, those waiting (not held by a live process).
        reclaimed / dropped: the counters.
        limit / window: the budget last used (window in ms).
        used: requests in the current window and in flight.
        paused: until when sending is paused (past: not paused).
        oldest: when the oldest chunk was written (-1: none).
        holders: processes holding chunks.
        processes: processes seen in the last minute.
        pending: chunks held.
    """

    now: int
    n: int
    b: int
    wn: int
    wb: int
    reclaimed: int
    dropped: int
    limit: int
    window: int
    used: int
    paused: int
    oldest: int
    holders: int
    processes: int
    pending: int

    @classmethod
    def decode(cls, raw: list[Any]) -> StatsReply:
        """From the script's answer, a list of 15 integers in this order."""
        return cls(*(int(x) for x in raw[:15]))


def _chunk_args(chunks: Sequence[Sequence[Record]]) -> list[Any]:
    """(data, n, bytes) per chunk, as ENQUEUE and REWRITE take them."""
    args: list[Any] = []
    for chunk in chunks:
        args += [b"\n".join(chunk), len(chunk), size_of(chunk)]
    return args


class Scripts:
    """The store's scripts registered on one redis-py client (sent by their
    SHA, and again in full when the server lost them), one method each.

    Args:
        client: a `redis.Redis` (answers read as RESP2) or a pipeline.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._scripts = {
            name: client.register_script(getattr(module, name))
            for module in (lua, reading)
            for name in module.__all__
            if name.isupper()
        }

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self._scripts[name](keys=keys, args=args, client=self.client)

    def enqueue(
        self,
        k: Keys,
        me: str,
        seq: int,
        cap: int,
        drop_oldest: bool,
        chunks: Sequence[Sequence[Record]],
    ) -> EnqueueReply:
        """Write `chunks` as process `me`'s write number `seq`, under the
        bound `cap` (bytes), deleting waiting chunks for room when
        `drop_oldest`."""
        args = [me, seq, cap, 1 if drop_oldest else 0, *_chunk_args(chunks)]
        return EnqueueReply.decode(
            self._run("ENQUEUE", [k.q, k.tot, k.out, k.seq], args)
        )

    def claim(
        self,
        k: Keys,
        me: str,
        permit: str,
        policy: StorePolicy,
        visibility: float,
        force: bool,
    ) -> ClaimReply:
        """Check the pause, the budget and whether a batch is due; take the
        batch (chunks quiet for `visibility` seconds first) and spend
        `permit` on it, or say how long to wait."""
        keys = [k.q, k.tot, k.log, k.fly, k.pause, k.epoch, k.rel, k.procs]
        args = [
            me,
            permit,
            policy.requests_per_window,
            ms(policy.window),
            ms(visibility),
            policy.max_count,
            policy.max_bytes,
            ms(policy.flush_interval),
            1 if force else 0,
        ]
        return ClaimReply.decode(self._run("CLAIM", keys, args))

    def acquire(
        self, k: Keys, permit: str, policy: StorePolicy, visibility: float
    ) -> AcquireReply:
        """Spend `permit` on a request if the pause and the budget allow."""
        keys = [k.tot, k.log, k.fly, k.pause, k.epoch]
        args = [permit, policy.requests_per_window, ms(policy.window), ms(visibility)]
        return AcquireReply.decode(self._run("ACQUIRE", keys, args))

    def complete(self, k: Keys, permit: str) -> None:
        """The request made with `permit` ended."""
        self._run("COMPLETE", [k.tot, k.log, k.fly], [permit])

    def pause(self, k: Keys, seconds: float) -> None:
        """Pause the account's sending for `seconds` (never shortened)."""
        self._run("PAUSE", [k.tot, k.pause], [ms(seconds)])

    def settle(self, k: Keys, sids: Sequence[str], sent: bool) -> None:
        """Delete settled chunks (`sent`: delivered, so a batch just left)."""
        self._run("SETTLE", [k.q, k.tot, k.out, k.rel], [int(sent), *sids])

    def release(self, k: Keys, me: str, sids: Sequence[str]) -> None:
        """Put chunks `me` holds back, for any process to take first."""
        self._run("RELEASE", [k.q, k.tot, k.rel], [me, *sids])

    def rewrite(
        self, k: Keys, me: str, old: str, origin: str, records: Sequence[Record]
    ) -> None:
        """Put `records` (part of chunk `old`, put by `origin`) back as a new
        waiting chunk, deleting `old` ('': keep it, part of it is held)."""
        args = [me, old, origin, *_chunk_args([records])]
        self._run("REWRITE", [k.q, k.tot, k.out, k.rel], args)

    def renew(self, k: Keys, me: str, sids: Sequence[str]) -> None:
        """Reset the idle time of the chunks `me` still holds."""
        self._run("RENEW", [k.q], [me, *sids])

    def forget(self, k: Keys, me: str) -> None:
        """Process `me` leaves (forgotten where it holds nothing)."""
        self._run("FORGET", [k.q, k.procs, k.seq, k.out], [me])

    def sweep(self, k: Keys, age: float) -> None:
        """Forget processes not seen for `age` seconds that hold nothing."""
        self._run("SWEEP", [k.q, k.procs, k.seq], [ms(age)])

    def adopt(
        self, old: Keys, mine: Keys, visibility: float, most: int, start: str
    ) -> AdoptReply:
        """One step of moving the unassigned chunks under `old` no live
        process holds into the account of `mine`: at most `most` chunks,
        after the id `start` ('-': from the first)."""
        keys = [
            old.q,
            old.tot,
            old.rel,
            old.out,
            old.seq,
            old.procs,
            old.log,
            old.fly,
            old.pause,
            old.epoch,
            mine.q,
            mine.tot,
            mine.out,
        ]
        args = [ms(visibility), most, start]
        return AdoptReply.decode(self._run("ADOPT", keys, args))

    def stats(self, k: Keys) -> StatsReply:
        """The partition's figures (read only)."""
        return StatsReply.decode(self._run("STATS", self._stats_keys(k), []))

    def queue_stats(self, pipe: Any, k: Keys) -> None:
        """Add a reading of the partition's figures to the pipeline `pipe`
        (its answer decodes with `StatsReply.decode`)."""
        self._scripts["STATS"](keys=self._stats_keys(k), args=[], client=pipe)

    @staticmethod
    def _stats_keys(k: Keys) -> list[str]:
        return [k.q, k.tot, k.log, k.fly, k.pause, k.procs, k.rel]
