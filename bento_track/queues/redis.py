"""`RedisStore`: one queue and one request budget on a Redis server that every
process of every host shares (`Client(store="redis://host:6379/0")`).

What lives where (the scripts and keys: `redis_scripts`):

- events wait in a Stream, in chunks (one chunk per grouped write of one
  process, up to a tenth of a batch), read through a consumer group: a
  chunk a process claimed is pending until it is settled, and one whose
  holder went quiet for `visibility_timeout` is taken over by the next
  claim of any process (at-least-once; counted as `reclaimed`). Nothing is
  ever trimmed: the bound (`max_store_bytes`) is applied when events are
  written, and `drop_oldest` deletes only waiting chunks.
- the request budget is a sliding-window log of completions plus the
  requests in flight, as in the SQLite store, kept in sorted sets and timed
  by Redis's `TIME` inside the scripts: hosts' clocks never enter it. A
  claim checks the 429 pause, the budget and whether a batch is due, takes
  the batch and spends its permit in one script: a permit is spent if and
  only if a batch leaves.
- a Redis that lost its data (restarted empty, flushed) counts a full
  window of requests as made when it started, so it never hands out a
  second window's worth at once.

Redis unavailable (down, hung, out of memory, loading): `track()` never
notices (it only appends to the worker's inbox). The worker's writes fail
within the socket timeout (2 s) and a breaker keeps it from waiting again
for a while; events go to a local fallback store (this process's memory by
default, bounded by `max_queue_size` / `max_queue_bytes`, or the SQLite
store named by `?fallback=sqlite:////path`), and move to Redis once it
answers. Sending holds meanwhile: no request is made without the shared
budget. A write whose answer was lost (a timeout) is kept aside and sent
again with the same sequence number, which Redis applies only once.

Fork: a connection never crosses a fork; the child names itself anew and
connects on first use.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._delivery.batcher import Record
from .._internal import RateLimitedLog, logger
from ..errors import ConfigurationError
from . import redis_scripts as lua
from .base import Claim, Lease, Permit, Store, StorePolicy, StoreStats
from .memory import MemoryStore

__all__ = [
    "DEFAULT_SOCKET_TIMEOUT",
    "DEFAULT_VISIBILITY_TIMEOUT",
    "RedisStore",
    "RedisUnavailable",
    "open_redis_store",
    "redacted",
]

#: seconds a process may hold a claimed batch without a sign of life before
#: any other process takes it over; far above one request's time
DEFAULT_VISIBILITY_TIMEOUT = 60.0
#: seconds any Redis call may take (redis-py 8's default retries stall about
#: a minute on a hung server)
DEFAULT_SOCKET_TIMEOUT = 2.0
#: seconds between connection health checks of an idle pooled connection
_HEALTH_CHECK_INTERVAL = 10
#: the breaker's first and longest pause after a failed call (real seconds)
_BREAKER_FIRST = 0.25
_BREAKER_MAX = 3.0
#: a write whose answer was lost waits this long (real seconds) to be sent
#: again with its sequence number before it goes to the fallback instead
_LIMBO_MAX_AGE = 30.0
#: seconds between sweeps of processes gone for `_FORGET_AFTER` ms
_SWEEP_EVERY = 60.0
_FORGET_AFTER_MS = 3_600_000
#: batches moved from the fallback per step (the worker has other work)
_MOVE_BATCHES = 20
#: answers that mean "not now", not "broken"
_TRANSIENT = ("OOM", "LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN")

_OPTIONS = ("namespace", "visibility_timeout", "fallback", "host")


class RedisUnavailable(Exception):
    """Redis could not be used just now (the message says why)."""


class _Unknown(RedisUnavailable):
    """A call whose answer was lost: it may or may not have run."""


def redacted(url: str) -> str:
    """`url` without its password (for messages and `location`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class _Chunk:
    """A chunk this process holds: its stream id, its origin, how many of its
    events are not settled yet, and the events of it each lease carries."""

    sid: str
    origin: str
    count: int
    left: int


@dataclass
class _Limbo:
    """A write whose answer was lost, to send again with the same `seq`."""

    seq: int
    chunks: list[list[Record]]
    since: float
    from_fallback: Lease | None = None
    records: int = 0


@dataclass
class _Keys:
    q: str
    tot: str
    log: str
    fly: str
    pause: str
    epoch: str
    rel: str
    out: str
    seq: str
    procs: str


def _keys(namespace: str) -> _Keys:
    # One hash tag: a cluster keeps every key of a store in one slot, as
    # scripts need.
    p = f"bt:{{{namespace}}}:"
    names = ("q", "tot", "log", "fly", "pause", "epoch", "rel", "out", "seq", "procs")
    return _Keys(**{name: p + name for name in names})


class RedisStore:
    """A `Store` on a Redis server shared by every process of every host
    (see the module docstring).

    Args:
        url: the server (`redis://[:password@]host:port/db`, `rediss://`),
            without this store's own options.
        max_bytes: the bound on event bytes kept in Redis.
        namespace: keys are `bt:{namespace}:...` (several accounts on one
            Redis database each take their own).
        visibility_timeout: seconds before a claimed batch whose holder
            went quiet is taken over.
        fallback: where events wait while Redis is unavailable (default: a
            `MemoryStore` of this process).
        host: this host's name in the consumer group (default: the host
            name); processes are named `host:pid:random`.
        redis_options: keyword arguments for `redis.Redis.from_url`.
        location: how the store was named, for messages (no password).
    """

    durable = True

    def __init__(
        self,
        url: str,
        *,
        max_bytes: int,
        namespace: str = "bento",
        visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
        fallback: Store | None = None,
        host: str | None = None,
        redis_options: dict[str, Any] | None = None,
        location: str | None = None,
    ) -> None:
        import redis  # the optional extra: checked by open_redis_store

        self._redis_module = redis
        self.url = url
        self.location = location or redacted(url)
        self.max_bytes = max_bytes
        self.namespace = namespace
        self.visibility_timeout = visibility_timeout
        self.keys = _keys(namespace)
        self.fallback: Store = fallback if fallback is not None else MemoryStore()
        self._host = host or socket.gethostname() or "host"
        self._options = dict(redis_options or {})
        self._policy: StorePolicy | None = None
        self._log = RateLimitedLog()
        self._reset_process()

    def __repr__(self) -> str:
        return f"RedisStore({self.location!r})"

    def _reset_process(self) -> None:
        """State of this process (again in a forked child)."""
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self.consumer = f"{self._host}:{self._pid}:{secrets.token_hex(4)}"
        self._seq = 0
        self._permit_seq = 0
        self._permits: dict[int, str] = {}
        self._tokens = 0
        self._handles = 0
        self._chunks: dict[int, _Chunk] = {}
        self._limbo: _Limbo | None = None
        #: settles, releases and a pause that Redis could not take yet
        self._pending_ops: list[tuple[str, list[str], bool]] = []
        self._local_pause = 0.0  # time.monotonic() until which we hold (429)
        self._down_until = 0.0  # time.monotonic(): the breaker is open until
        self._failures = 0
        self._down_since: float | None = None
        self._out = 0  # this process's events in Redis, as last read
        self._next_sweep = (
            time.monotonic() + _SWEEP_EVERY * secrets.randbelow(100) / 100
        )

    # -- connection and breaker --------------------------------------------------

    def _redis(self) -> Any:
        if self._pid != os.getpid():  # a fork that ran no hook
            self.after_fork()
        if self._client is None:
            redis = self._redis_module
            options: dict[str, Any] = {
                "socket_timeout": DEFAULT_SOCKET_TIMEOUT,
                "socket_connect_timeout": DEFAULT_SOCKET_TIMEOUT,
                "health_check_interval": _HEALTH_CHECK_INTERVAL,
                # The breaker retries; redis-py's own retries would multiply
                # the wait on a hung server.
                "retry": redis.retry.Retry(redis.backoff.NoBackoff(), 0),
                "protocol": 2,
                "client_name": f"bento_track:{self.consumer}",
            }
            options.update(self._options)
            client = redis.Redis.from_url(self.url, **options)
            self._scripts = {
                name: client.register_script(getattr(lua, name)) for name in lua.__all__
            }
            self._client = client
        return self._client

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _breaker_delay(self) -> float:
        return max(0.05, self._down_until - time.monotonic())

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run script `name`; failures open the breaker and raise
        `RedisUnavailable` (`_Unknown` when it may have run)."""
        if not self._usable():
            raise RedisUnavailable("Redis was unavailable moments ago")
        errors = self._redis_module.exceptions
        try:
            client = self._redis()
            result = self._scripts[name](keys=keys, args=args, client=client)
        except (errors.ConnectionError, errors.TimeoutError) as exc:
            self._failed(exc)
            text = str(exc) or type(exc).__name__
            if "connecting to" in text and not isinstance(exc, errors.TimeoutError):
                # No connection, so nothing was sent: it did not run.
                raise RedisUnavailable(text) from None
            raise _Unknown(text) from None
        except errors.RedisError as exc:
            self._failed(exc)
            raise RedisUnavailable(str(exc)) from None
        if self._failures:
            self._recovered()
        return result

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        pause = min(_BREAKER_MAX, _BREAKER_FIRST * 2 ** (self._failures - 1))
        self._down_until = time.monotonic() + pause
        if self._down_since is None:
            self._down_since = time.monotonic()
        text = str(exc) or type(exc).__name__
        if not text.startswith(_TRANSIENT) and isinstance(
            exc, self._redis_module.exceptions.ResponseError
        ):
            logger.error("bento_track: the Redis store %s: %s", self.location, text)
        self._log.warn(
            "redis_down",
            1,
            "the Redis store %s is unavailable (%s); events wait "
            "in %s and sending holds until it is back",
            self.location,
            text,
            self.fallback.location,
        )

    def _recovered(self) -> None:
        down = time.monotonic() - (self._down_since or time.monotonic())
        self._failures = 0
        self._down_since = None
        logger.info(
            "bento_track: the Redis store %s is back after %.1f s",
            self.location,
            down,
        )

    # -- configuration -----------------------------------------------------------

    def configure(self, policy: StorePolicy, clock: object) -> None:
        """Take the worker's settings; the clock only reaches the fallback (the budget
        runs on Redis's clock)."""
        self._policy = policy
        # The fallback only holds events for Redis: a budget that never binds
        # (moving events spends no request), its bounds the client's memory
        # bounds.
        self.fallback.configure(
            StorePolicy(
                max_count=policy.max_count,
                max_bytes=policy.max_bytes,
                flush_interval=policy.flush_interval,
                requests_per_window=10_000,
                window=0.001,
                overflow=policy.overflow,
                max_events=policy.max_events,
                max_bytes_held=policy.max_bytes_held,
            ),
            clock,
        )

    def _need_policy(self) -> StorePolicy:
        policy = self._policy
        assert policy is not None, "configure() first"
        return policy

    # -- writing -----------------------------------------------------------------

    def put(self, records: list[Record]) -> list[Record]:
        """Write `records` to Redis (under the bound), or to the fallback while Redis is
        out or the fallback still holds older events; return those dropped."""
        with self._lock:
            if self._pid != os.getpid():
                self.after_fork()
            if self._usable():
                self._catch_up()
            if (
                self._limbo is not None
                or self._fallback_waiting()
                or not self._usable()
            ):
                # Behind what waits locally (oldest first), or Redis is out.
                return self.fallback.put(records)
            chunks = self._chunked(records)
            try:
                kept, old = self._enqueue(chunks)
            except _Unknown:
                self._limbo = _Limbo(
                    self._seq, chunks, time.monotonic(), records=len(records)
                )
                return []
            except RedisUnavailable:
                return self.fallback.put(records)
            dropped = [r for part in old for r in part.split(b"\n")]
            for chunk in chunks[kept:]:
                dropped += chunk
            return dropped

    def _chunked(self, records: list[Record]) -> list[list[Record]]:
        """Chunks of up to a tenth of a batch (one stream entry each)."""
        policy = self._need_policy()
        most = max(1, policy.max_count // 10)
        chunks: list[list[Record]] = []
        chunk: list[Record] = []
        size = 0
        for record in records:
            step = len(record) + 1
            if chunk and (len(chunk) >= most or size + step > policy.max_bytes):
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(record)
            size += step
        if chunk:
            chunks.append(chunk)
        return chunks

    def _enqueue(
        self, chunks: list[list[Record]], seq: int | None = None
    ) -> tuple[int, list[bytes]]:
        """Write `chunks` under a new sequence number (or `seq`, a retry);
        (chunks kept, data of old chunks deleted for room)."""
        policy = self._need_policy()
        if seq is None:
            self._seq += 1
            seq = self._seq
        args: list[Any] = [
            self.consumer,
            seq,
            self.max_bytes,
            1 if policy.overflow == "drop_oldest" else 0,
        ]
        for chunk in chunks:
            args += [
                b"\n".join(chunk),
                len(chunk),
                sum(map(len, chunk)) + len(chunk),
            ]
        k = self.keys
        result = self._run("ENQUEUE", [k.q, k.tot, k.out, k.seq], args)
        kept = int(result[0])
        if kept < 0:  # applied before (a retry of a write whose answer was lost)
            return len(chunks), []
        self._out = int(result[1])
        return kept, [bytes(x) for x in result[2:]]

    def _catch_up(self) -> None:
        """With Redis answering: settle what could not be settled, resend a
        write whose answer was lost, move what waits in the fallback."""
        try:
            self._retry_pending_ops()
            self._resolve_limbo()
            self._move_fallback()
        except RedisUnavailable:
            pass

    def _resolve_limbo(self) -> None:
        limbo = self._limbo
        if limbo is None:
            return
        try:
            self._enqueue(limbo.chunks, limbo.seq)
        except _Unknown:
            if time.monotonic() - limbo.since > _LIMBO_MAX_AGE:
                self._limbo_to_fallback(limbo)
            raise
        except RedisUnavailable:
            self._limbo_to_fallback(limbo)
            raise
        # Dropped by the bound at that write: rare, and said by the store's
        # `dropped` counter (the events were reported written).
        self._limbo = None
        if limbo.from_fallback is not None:
            self._fallback_done(limbo.from_fallback)

    def _limbo_to_fallback(self, limbo: _Limbo) -> None:
        # Redis may have applied it after all: the events may arrive twice.
        self._limbo = None
        if limbo.from_fallback is not None:
            self.fallback.release(limbo.from_fallback)
            return
        dropped = self.fallback.put([r for chunk in limbo.chunks for r in chunk])
        if dropped:
            self._log.warn(
                "redis_fallback_full",
                len(dropped),
                "events dropped: the fallback %s is full",
                self.fallback.location,
            )

    def _fallback_waiting(self) -> bool:
        return bool(self.fallback.outstanding()) or self._fallback_shared_waiting()

    def _fallback_shared_waiting(self) -> bool:
        # A durable fallback may hold other processes' (or dead ones') events.
        if not self.fallback.durable:
            return False
        try:
            return self.fallback.stats().depth > 0
        except Exception:
            return False

    def _move_fallback(self) -> None:
        """Move events from the fallback into Redis (bounded per call)."""
        fallback = self.fallback
        for _ in range(_MOVE_BATCHES):
            if not self._fallback_waiting():
                return
            claim = fallback.claim(True)
            lease = claim.lease
            if lease is None:
                return
            if lease.permit is not None:
                fallback.complete(lease.permit)
            chunks = self._chunked(lease.records)
            try:
                kept, old = self._enqueue(chunks)
            except _Unknown:
                self._limbo = _Limbo(
                    self._seq,
                    chunks,
                    time.monotonic(),
                    from_fallback=lease,
                    records=len(lease.records),
                )
                raise
            except RedisUnavailable:
                fallback.release(lease)
                raise
            if kept < len(chunks) or old:
                self._log.warn(
                    "redis_full",
                    sum(map(len, chunks[kept:])) + len(old),
                    "events dropped moving them into the Redis "
                    "store %s: it is full (max_store_bytes)",
                    self.location,
                )
            self._fallback_done(lease)

    def _fallback_done(self, lease: Lease) -> None:
        self.fallback.ack(lease)

    # -- claiming ------------------------------------------------------------------

    def claim(self, force: bool) -> Claim:
        """A batch with its permit (the CLAIM script), or how long to wait; while Redis
        is out, nothing (sending holds without the shared budget)."""
        policy = self._need_policy()
        with self._lock:
            if self._pid != os.getpid():
                self.after_fork()
            if not self._usable():
                return self._holding()
            self._catch_up()
            hold = self._local_pause - time.monotonic()
            if hold > 0:
                return Claim(None, hold, budget_bound=True)
            self._sweep()
            self._permit_seq += 1
            member = f"{self.consumer}:{self._permit_seq}"
            k = self.keys
            try:
                result = self._run(
                    "CLAIM",
                    [k.q, k.tot, k.log, k.fly, k.pause, k.epoch, k.rel, k.procs],
                    [
                        self.consumer,
                        member,
                        policy.requests_per_window,
                        _ms(policy.window),
                        _ms(self.visibility_timeout),
                        policy.max_count,
                        policy.max_bytes,
                        _ms(policy.flush_interval),
                        1 if force else 0,
                    ],
                )
            except RedisUnavailable:
                return self._holding()
            kind = int(result[0])
            if kind == 0:
                return Claim(None, None)
            if kind == 1:
                return Claim(
                    None,
                    int(result[1]) / 1000.0,
                    int(result[2]),
                    int(result[3]),
                    budget_bound=bool(int(result[4])),
                )
            count, nbytes = int(result[1]), int(result[2])
            lease = self._lease(result[3:])
            self._permits[self._permit_seq] = member
            lease.permit = self._permit_seq
            return Claim(lease, 0.0, count, nbytes)

    def _holding(self) -> Claim:
        """Redis is out: nothing is sent without the shared budget."""
        waiting = self.fallback.outstanding() + self._limbo_records()
        return Claim(None, self._breaker_delay(), waiting, budget_bound=True)

    def _lease(self, flat: list[Any]) -> Lease:
        records: list[Record] = []
        ids: list[int] = []
        for i in range(0, len(flat), 4):
            sid = _text(flat[i])
            part = bytes(flat[i + 1]).split(b"\n")
            self._handles += 1
            self._chunks[self._handles] = _Chunk(
                sid, _text(flat[i + 3]), len(part), len(part)
            )
            records += part
            ids += [self._handles] * len(part)
        self._tokens += 1
        return Lease(self._tokens, records, ids, [0] * len(records))

    def _sweep(self) -> None:
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + _SWEEP_EVERY
        k = self.keys
        try:
            self._run("SWEEP", [k.q, k.procs, k.seq], [_FORGET_AFTER_MS])
        except RedisUnavailable:
            pass

    # -- the budget -------------------------------------------------------------------

    def acquire(self) -> tuple[Permit | None, float]:
        """A permit for a retry on leased events, from the shared budget."""
        policy = self._need_policy()
        with self._lock:
            if not self._usable():
                return None, self._breaker_delay()
            hold = self._local_pause - time.monotonic()
            if hold > 0:
                return None, hold
            self._permit_seq += 1
            member = f"{self.consumer}:{self._permit_seq}"
            k = self.keys
            try:
                result = self._run(
                    "ACQUIRE",
                    [k.tot, k.log, k.fly, k.pause, k.epoch],
                    [
                        member,
                        policy.requests_per_window,
                        _ms(policy.window),
                        _ms(self.visibility_timeout),
                    ],
                )
            except RedisUnavailable:
                return None, self._breaker_delay()
            if int(result[0]):
                return None, int(result[1]) / 1000.0
            self._permits[self._permit_seq] = member
            return self._permit_seq, 0.0

    def complete(self, permit: Permit) -> None:
        """The request made with `permit` ended: its completion enters the log."""
        with self._lock:
            member = self._permits.pop(permit, None)
            if member is None:
                return
            k = self.keys
            try:
                self._run("COMPLETE", [k.tot, k.log, k.fly], [member])
            except RedisUnavailable:
                # Still "in flight" for Redis: counted as completed when the
                # visibility timeout passes, later than it was (never fewer).
                pass

    def pause(self, seconds: float) -> None:
        """Pause every process of the fleet for `seconds` (this one at once, even with
        Redis out)."""
        with self._lock:
            self._local_pause = max(self._local_pause, time.monotonic() + seconds)
            self._push_pause()

    def _push_pause(self) -> None:
        left = self._local_pause - time.monotonic()
        if left <= 0:
            return
        k = self.keys
        try:
            self._run("PAUSE", [k.tot, k.pause], [_ms(left)])
        except RedisUnavailable:
            self._pending_ops.append(("pause", [], False))

    def paused_until(self) -> float | None:
        """Epoch seconds (this host's clock) until which sending is paused, or None."""
        local = self._local_pause - time.monotonic()
        until = time.time() + local if local > 0 else None
        if not self._usable():
            return until
        try:
            client = self._redis()
            raw = client.get(self.keys.pause)
            now_s, now_us = client.time()
        except self._redis_module.exceptions.RedisError:
            return until
        left = int(raw or 0) / 1000.0 - (float(now_s) + float(now_us) / 1e6)
        # Redis's clock says how long is left; this host's says when that is.
        if left > 0:
            theirs = time.time() + left
            return max(until or 0.0, theirs)
        return until

    # -- settling ---------------------------------------------------------------------

    def renew(self, lease: Lease) -> None:
        """Reset the idle time of the lease's chunks, so nobody takes them over."""
        with self._lock:
            sids = [
                self._chunks[h].sid
                for h in dict.fromkeys(lease.ids)
                if h in self._chunks
            ]
            if not sids:
                return
            try:
                self._run("RENEW", [self.keys.q], [self.consumer, *sids])
            except RedisUnavailable:
                pass

    def split(self, lease: Lease) -> tuple[Lease, Lease]:
        """Two halves, still held; a chunk they cut is settled when both are."""
        return lease.split()

    def ack(self, lease: Lease) -> None:
        """Bento accepted the lease's events: delete their chunks."""
        self._settle(lease, sent=True)

    def reject(self, lease: Lease) -> None:
        """Bento refused the lease's events for good: delete their chunks."""
        self._settle(lease, sent=False)

    def _settle(self, lease: Lease, *, sent: bool) -> None:
        with self._lock:
            done: list[str] = []
            for handle, n in Counter(lease.ids).items():
                chunk = self._chunks.get(handle)
                if chunk is None:
                    continue
                chunk.left -= n
                if chunk.left <= 0:
                    # A chunk split by a bisection is deleted once both
                    # halves are settled.
                    del self._chunks[handle]
                    done.append(chunk.sid)
            if done:
                self._apply("settle", done, sent)

    def _apply(self, op: str, sids: list[str], sent: bool) -> None:
        k = self.keys
        try:
            if op == "settle":
                self._run("SETTLE", [k.q, k.tot, k.out, k.rel], [int(sent), *sids])
            else:
                self._run("RELEASE", [k.q, k.tot, k.rel], [self.consumer, *sids])
        except RedisUnavailable:
            # Both are idempotent: done again once Redis answers. Until
            # then the chunks stay pending under our name (a settle that
            # never comes is a reclaim after the visibility timeout).
            self._pending_ops.append((op, sids, sent))

    def _retry_pending_ops(self) -> None:
        while self._pending_ops:
            op, sids, sent = self._pending_ops[0]
            k = self.keys
            if op == "pause":
                left = self._local_pause - time.monotonic()
                if left > 0:
                    self._run("PAUSE", [k.tot, k.pause], [_ms(left)])
            elif op == "settle":
                self._run("SETTLE", [k.q, k.tot, k.out, k.rel], [int(sent), *sids])
            else:
                self._run("RELEASE", [k.q, k.tot, k.rel], [self.consumer, *sids])
            self._pending_ops.pop(0)

    def release(self, lease: Lease) -> None:
        """Put the lease's events back for any process to take first."""
        with self._lock:
            whole: list[str] = []
            parts: list[tuple[int, list[Record]]] = []
            mine: dict[int, list[Record]] = {}
            for handle, record in zip(lease.ids, lease.records, strict=True):
                mine.setdefault(handle, []).append(record)
            for handle, records in mine.items():
                chunk = self._chunks.get(handle)
                if chunk is None:
                    continue
                if len(records) == chunk.left == chunk.count:
                    del self._chunks[handle]
                    whole.append(chunk.sid)
                else:
                    parts.append((handle, records))
            if whole:
                self._apply("release", whole, False)
            for handle, records in parts:
                self._put_back_part(handle, records)

    def _put_back_part(self, handle: int, records: list[Record]) -> None:
        """Part of a chunk goes back (a bisection half): written as a new
        waiting chunk, the old one deleted once nothing of it is held."""
        chunk = self._chunks[handle]
        chunk.left -= len(records)
        old = ""
        if chunk.left <= 0:
            del self._chunks[handle]
            old = chunk.sid
        k = self.keys
        size = sum(map(len, records)) + len(records)
        try:
            self._run(
                "REWRITE",
                [k.q, k.tot, k.out, k.rel],
                [
                    self.consumer,
                    old,
                    chunk.origin,
                    b"\n".join(records),
                    len(records),
                    size,
                ],
            )
        except RedisUnavailable:
            # Left pending under our name: taken over (whole) after the
            # visibility timeout; the settled part may then be sent again.
            pass

    # -- figures ----------------------------------------------------------------------

    def outstanding(self) -> int:
        """Events this process put that are still in Redis (as last read while Redis is
        out), in the fallback or in limbo."""
        local = self.fallback.outstanding() + self._limbo_records()
        if self._usable() and self._pid == os.getpid():
            try:
                raw = self._redis().hget(self.keys.out, self.consumer)
                self._out = int(raw or 0)
            except self._redis_module.exceptions.RedisError as exc:
                self._failed(exc)
        return self._out + local

    def _limbo_records(self) -> int:
        limbo = self._limbo
        return 0 if limbo is None or limbo.from_fallback is not None else limbo.records

    def memory_held(self) -> int:
        """Events in this process's memory: the memory fallback and a write in limbo."""
        return self.fallback.memory_held() + self._limbo_records()

    def stats(self) -> StoreStats:
        """The fleet's figures (one read-only script).

        Raises:
            RedisUnavailable: Redis cannot answer now.
        """
        if not self._usable():
            raise RedisUnavailable(f"the Redis store {self.location} is unavailable")
        errors = self._redis_module.exceptions
        try:
            k = self.keys
            client = self._redis()
            raw = self._scripts["STATS"](
                keys=[k.q, k.tot, k.log, k.fly, k.pause, k.procs],
                args=[],
                client=client,
            )
        except errors.RedisError as exc:
            raise RedisUnavailable(str(exc)) from None
        return stats_from(raw, self.location, self.max_bytes, self.time_offset(raw))

    @staticmethod
    def time_offset(raw: list[Any]) -> float:
        """This host's clock minus Redis's, from a STATS answer."""
        return time.time() - int(raw[0]) / 1000.0

    # -- processes --------------------------------------------------------------------

    def after_fork(self) -> None:
        """In a forked child: a new name, no connection, no leases; the memory fallback
        forgets the parent's events."""
        if self._pid == os.getpid():
            return  # renewed already (the client's fork hook, or our own check)
        # The parent's connections stay open for the parent: never closed
        # here (redis-py's pool also checks the pid).
        if self._client is not None:
            _orphans.append(self._client)
        self._reset_process()
        self.fallback.after_fork()

    def close(self) -> None:
        """Move what waits locally into Redis (if it answers), leave the group, close
        the connections."""
        with self._lock:
            if self._pid != os.getpid():
                return
            if self._usable():
                self._catch_up()
                for member in list(self._permits.values()):
                    try:
                        self._run(
                            "COMPLETE",
                            [self.keys.tot, self.keys.log, self.keys.fly],
                            [member],
                        )
                    except RedisUnavailable:
                        break
                self._permits.clear()
                k = self.keys
                try:
                    self._run("FORGET", [k.q, k.procs, k.seq, k.out], [self.consumer])
                except RedisUnavailable:
                    pass
            lost = self._limbo_records()
            if not self.fallback.durable:
                lost += self.fallback.outstanding()
            if lost:
                logger.warning(
                    "bento_track: %d events could not reach the Redis store %s "
                    "and are lost with this process (configure ?fallback="
                    "sqlite:////PATH to keep them on disk)",
                    lost,
                    self.location,
                )
            self.fallback.close()
            client, self._client = self._client, None
            if client is not None:
                try:
                    client.close()
                except Exception:
                    pass


#: clients inherited from a parent process (their sockets are the parent's)
_orphans: list[Any] = []


def _ms(seconds: float) -> int:
    return max(1, int(round(seconds * 1000)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def stats_from(
    raw: list[Any], location: str, max_bytes: int, offset: float
) -> StoreStats:
    """`StoreStats` from a STATS answer (times moved onto this host's clock)."""
    (
        now,
        n,
        b,
        wn,
        _wb,
        reclaimed,
        dropped,
        limit,
        window,
        used,
        paused,
        oldest,
        holders,
        procs,
        _pending,
    ) = (int(x) for x in raw[:15])
    return StoreStats(
        kind="redis",
        location=location,
        depth=max(0, n),
        nbytes=max(0, b),
        max_bytes=max_bytes,
        leased=max(0, n - wn),
        leases=holders,
        oldest_age=max(0.0, (now - oldest) / 1000.0) if oldest >= 0 else None,
        budget_used=used,
        budget_limit=limit,
        budget_window=window / 1000.0,
        paused_until=paused / 1000.0 + offset if paused > now else None,
        reclaimed=reclaimed,
        dropped=dropped,
        processes=procs,
    )


def open_redis_store(
    url: str,
    *,
    max_bytes: int,
    open_local: Callable[..., Store] | None = None,
) -> RedisStore:
    """The Redis store `url` names (no I/O: Redis may be down now; the
    store waits for it). Options in the query string: `namespace`,
    `visibility_timeout`, `fallback` (`memory` or a `sqlite:///` URL, opened
    by `open_local`, `url.open_store`), `host`; any other is redis-py's
    (`socket_timeout=`, `ssl_cert_reqs=`, ...).

    Raises:
        ConfigurationError: redis-py is missing, an option is malformed, or
            the SQLite fallback cannot be used.
    """
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "store: a Redis store needs redis-py: pip install 'bento-track[redis]'",
            setting="store",
        ) from None
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _OPTIONS:
            ours[key] = value
        else:
            theirs.append((key, value))
    server = urlunsplit(parts._replace(query=urlencode(theirs)))
    if not parts.hostname and not parts.path:
        raise ConfigurationError(
            f"store: no Redis server named in {redacted(url)!r}", setting="store"
        )
    namespace = ours.get("namespace", "bento")
    if (
        not namespace
        or len(namespace) > 64
        or not all(c.isalnum() or c in "-_." for c in namespace)
    ):
        raise ConfigurationError(
            f"store: namespace must be 1-64 letters, digits, '-', '_' or '.', "
            f"not {namespace!r}",
            setting="store",
        )
    visibility = DEFAULT_VISIBILITY_TIMEOUT
    if "visibility_timeout" in ours:
        try:
            visibility = float(ours["visibility_timeout"])
        except ValueError:
            visibility = -1.0
        if not 1.0 <= visibility <= 86400.0:
            raise ConfigurationError(
                "store: visibility_timeout must be seconds in [1, 86400], not "
                f"{ours['visibility_timeout']!r}",
                setting="store",
            )
    host = ours.get("host") or None
    if host is not None and (len(host) > 64 or ":" in host or not host.isprintable()):
        raise ConfigurationError(
            f"store: host must be a name without ':' (at most 64), not {host!r}",
            setting="store",
        )
    fallback: Store | None = None
    spec = ours.get("fallback", "memory").strip()
    if spec not in ("", "memory"):
        if not spec.startswith("sqlite:///"):
            raise ConfigurationError(
                f"store: fallback must be 'memory' or 'sqlite:///PATH', not {spec!r}",
                setting="store",
            )
        if open_local is None:
            raise ConfigurationError(
                "store: no way to open the fallback here", setting="store"
            )
        fallback = open_local(spec, max_bytes=max_bytes)
    return RedisStore(
        server,
        max_bytes=max_bytes,
        namespace=namespace,
        visibility_timeout=visibility,
        fallback=fallback,
        host=host,
        location=redacted(url),
    )


def describe_redis(url: str, *, max_bytes: int) -> dict[str, Any]:
    """A Redis store's figures and the chunks each process holds, read
    without writing anything (for `bento-track store URL`).

    Raises:
        ConfigurationError: not a usable URL, Redis cannot be reached, or
            no store in that namespace.
    """
    store = open_redis_store(_without(url, "fallback"), max_bytes=max_bytes)
    errors = store._redis_module.exceptions
    k = store.keys
    try:
        client = store._redis()
        if not client.exists(k.tot, k.q):
            raise ConfigurationError(
                f"no store in namespace {store.namespace!r} at {store.location}"
            )
        raw = store._scripts["STATS"](
            keys=[k.q, k.tot, k.log, k.fly, k.pause, k.procs], args=[], client=client
        )
        holders = []
        consumers = client.xinfo_consumers(k.q, "ship") if client.exists(k.q) else []
        for consumer in consumers:
            if not consumer["pending"]:
                continue
            name = _text(consumer["name"])
            pending = client.xpending_range(k.q, "ship", "-", "+", 10_000, name)
            pipe = client.pipeline(transaction=False)
            for entry in pending:
                pipe.xrange(k.q, entry["message_id"], entry["message_id"])
            events = sum(int(found[0][1][b"n"]) for found in pipe.execute() if found)
            host, _, rest = name.partition(":")
            holders.append(
                {
                    "consumer": name,
                    "host": host,
                    "pid": int(rest.partition(":")[0] or 0),
                    "chunks": int(consumer["pending"]),
                    "events": events,
                    "idle": round(int(consumer["idle"]) / 1000.0, 1),
                }
            )
    except errors.RedisError as exc:
        raise ConfigurationError(
            f"cannot read the Redis store {store.location}: {exc}"
        ) from None
    finally:
        if store._client is not None:
            store._client.close()
    stats = stats_from(raw, store.location, max_bytes, RedisStore.time_offset(raw))
    return {
        **asdict(stats),
        "namespace": store.namespace,
        "visibility_timeout": store.visibility_timeout,
        "lease_list": holders,
    }


def _without(url: str, option: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(
        parts._replace(query=urlencode([(k, v) for k, v in query if k != option]))
    )
