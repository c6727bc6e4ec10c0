"""`RedisStore`: one queue and one request budget per Bento account on a
Redis server that every process of every host shares
(`Client(store="redis://host:6379/0")`).

What lives where (the scripts and keys: `redis_scripts`):

- everything is kept per account (the client's endpoint, `site_uuid` and
  publishable key, `queues.account`): an account's queue, leases, budget,
  pause and counters are keys under its own prefix
  `bt:{<namespace>:<account digest>}:`, so several apps (staging next to
  production, two customers) may share one Redis database: a process
  claims, budgets and pauses only its own account's events, and they leave
  with its keys. A hash `bt:{<namespace>}:accounts` names each account by
  its `site_uuid` (never its keys) for `stats()` and `bento-track store`.
- events wait in a Stream, in chunks (one chunk per grouped write of one
  process, up to a tenth of a batch), read through a consumer group: a
  chunk a process claimed is pending until it is settled, and one whose
  holder went quiet for `visibility_timeout` is taken over by the next
  claim of any process of the account (at-least-once; counted as
  `reclaimed`). Nothing is ever trimmed: the bound (`max_store_bytes`) is
  applied when events are written, and `drop_oldest` deletes only waiting
  chunks.
- the request budget is a sliding-window log of completions plus the
  requests in flight, as in the SQLite store, kept in sorted sets and timed
  by Redis's `TIME` inside the scripts: hosts' clocks never enter it. A
  claim checks the 429 pause, the budget and whether a batch is due, takes
  the batch and spends its permit in one script: a permit is spent if and
  only if a batch leaves.
- a Redis that lost its data (restarted empty, flushed) counts a full
  window of requests as made when it started, so it never hands out a
  second window's worth at once.

Events written before stores knew accounts (keys `bt:{<namespace>}:q` and
the like) have no account: no process claims them, because sending them
with a guessed account's keys could give one customer's subscribers to
another. `stats().unassigned` and `bento-track store` count them, and
`adopt_legacy()` (`bento-track store URL --adopt`) hands them to the
account an operator names.

Redis unavailable (down, hung, refusing the password, out of memory,
loading): `track()` never notices (it only appends to the worker's inbox).
The worker's writes fail within the socket timeout (2 s) and a breaker
keeps it from waiting again for a while; events go to a local fallback
store (this process's memory by default, bounded by `max_queue_size` /
`max_queue_bytes`, or the SQLite store named by `?fallback=sqlite:////path`),
and move to Redis once it answers. Sending holds meanwhile: no request is
made without the shared budget. A write whose answer was lost (a timeout)
is kept aside and sent again with the same sequence number, which Redis
applies only once. `stats()` never waits on Redis for more than
`STATS_WAIT`: a reading runs in a thread of its own, and a Redis that does
not answer in time gets the figures last read, marked `stale`. At exit,
only what is on the Redis server (or in a SQLite fallback) is `kept()`;
the rest is said to be lost, and how many.

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
from dataclasses import asdict, dataclass, replace
from typing import Any

from .._delivery.batcher import Record
from .._internal import RateLimitedLog, logger
from ..errors import ConfigurationError
from . import redis_scripts as lua
from .account import UNNAMED, Account
from .base import (
    AccountStats,
    Claim,
    Lease,
    Permit,
    Store,
    StorePolicy,
    StoreStats,
)
from .chunks import chunked, size_of
from .memory import MemoryStore
from .redis_url import RedisURL, parse_redis_url, redacted

__all__ = [
    "DEFAULT_SOCKET_TIMEOUT",
    "DEFAULT_VISIBILITY_TIMEOUT",
    "STATS_WAIT",
    "RedisStore",
    "RedisUnavailable",
    "adopt_legacy",
    "describe_redis",
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

#: seconds `stats()` waits for a fresh reading before it answers with the
#: figures last read (marked stale): a healthy Redis answers in about a
#: millisecond; a hung one must not hold up a health check
STATS_WAIT = 0.005
#: figures read this recently are current (not `stale`)...
_FRESH_FOR = 1.0
#: ...unless a reading has been out this long: Redis is slow or hung
_SLOW_READING = 0.1
#: chunks `adopt_legacy` looks at per script call (each call is atomic)
_ADOPT_STEP = 200


class RedisUnavailable(Exception):
    """Redis could not be used just now (the message says why)."""


class _Unknown(RedisUnavailable):
    """A call whose answer was lost: it may or may not have run."""


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


_NAMES = ("q", "tot", "log", "fly", "pause", "epoch", "rel", "out", "seq", "procs")


def _keys(namespace: str, account: str) -> _Keys:
    """An account's keys. One hash tag: a cluster keeps every key of an
    account in one slot, as scripts need."""
    p = f"bt:{{{namespace}:{account}}}:"
    return _Keys(**{name: p + name for name in _NAMES})


def _legacy_keys(namespace: str) -> _Keys:
    """The keys written before stores knew accounts (unassigned events)."""
    p = f"bt:{{{namespace}}}:"
    return _Keys(**{name: p + name for name in _NAMES})


def _registry(namespace: str) -> str:
    """The hash of the namespace's accounts: digest -> `site_uuid`."""
    return f"bt:{{{namespace}}}:accounts"


@dataclass
class _Reading:
    """A reading of the figures, in a thread of its own (`stats()`)."""

    started: float  # time.monotonic()
    done: threading.Event


class RedisStore:
    """A `Store` on a Redis server shared by every process of every host,
    partitioned by account (see the module docstring).

    Args:
        url: the server (`redis://[[user]:password@]host[:port][/db]`,
            `rediss://`, with redis-py's options), without this store's
            own options (`open_redis_store` takes those apart).
        max_bytes: the bound on event bytes each account keeps in Redis.
        namespace: keys are `bt:{namespace:account}:...`; stores in
            different namespaces never meet.
        visibility_timeout: seconds before a claimed batch whose holder
            went quiet is taken over.
        fallback: where events wait while Redis is unavailable (default: a
            `MemoryStore` of this process).
        host: this host's name in the consumer group (default: the host
            name); processes are named `host:pid:random`.
        redis_options: keyword arguments for `redis.Redis`.
        location: how the store was named, for messages (no password).

    Raises:
        ConfigurationError: a malformed URL or option (naming `store`).
    """

    durable = True

    def __init__(
        self,
        url: str | RedisURL,
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

        parsed = url if isinstance(url, RedisURL) else parse_redis_url(url)
        if isinstance(url, str) and parsed.options:
            raise ConfigurationError(
                f"store: {', '.join(sorted(parsed.options))} go to "
                "open_redis_store (or RedisStore's arguments), not its url",
                setting="store",
            )
        self._redis_module = redis
        #: the server, without its password (it stays in `_connection`)
        self.url = parsed.server
        self._connection = {**parsed.connection, **(redis_options or {})}
        self.location = location or parsed.location
        self.max_bytes = max_bytes
        self.namespace = namespace
        self.visibility_timeout = visibility_timeout
        #: the account whose events this store claims (the client's, from
        #: `configure`; a store used alone has a partition of its own)
        self.account: Account = UNNAMED
        self.keys = _keys(namespace, UNNAMED.key)
        self.fallback: Store = fallback if fallback is not None else MemoryStore()
        #: seconds `stats()` waits for a fresh reading (tools that need
        #: exact figures may wait longer)
        self.stats_wait = STATS_WAIT
        self._host = host or socket.gethostname() or "host"
        self._policy: StorePolicy | None = None
        self._log = RateLimitedLog()
        self._figures = self._no_figures()
        #: time.monotonic() of the last reading that succeeded (None: none)
        self._figures_at: float | None = None
        self._reading_failed = False
        #: (kept, lost) when closed: what `kept()` and `outstanding()` say
        #: after `close()`
        self._final: tuple[int, int] | None = None
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
        self._registered = False  # the account is in the namespace's registry
        self._next_sweep = (
            time.monotonic() + _SWEEP_EVERY * secrets.randbelow(100) / 100
        )
        # stats(): never under `_lock` (a worker call may hold it while
        # Redis hangs), on a connection of its own
        self._stats_lock = threading.Lock()
        self._reading: _Reading | None = None
        self._stats_client: Any = None

    # -- connection and breaker --------------------------------------------------

    def _new_client(self, role: str) -> Any:
        redis = self._redis_module
        options: dict[str, Any] = {
            "socket_timeout": DEFAULT_SOCKET_TIMEOUT,
            "socket_connect_timeout": DEFAULT_SOCKET_TIMEOUT,
            "health_check_interval": _HEALTH_CHECK_INTERVAL,
            "client_name": f"bento_track:{self.consumer}{role}",
        }
        options.update(self._connection)
        # The breaker retries; redis-py's own retries would multiply the
        # wait on a hung server. The scripts' answers are read as RESP2.
        options["retry"] = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
        options["protocol"] = 2
        return redis.Redis(**options)

    def _redis(self) -> Any:
        if self._pid != os.getpid():  # a fork that ran no hook
            self.after_fork()
        if self._client is None:
            client = self._new_client("")
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
        except (errors.AuthenticationError, errors.AuthorizationError) as exc:
            # Refused before any command ran: a wrong password or user.
            self._failed(exc, refused=True)
            raise RedisUnavailable(str(exc) or type(exc).__name__) from None
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

    def _failed(self, exc: Exception, *, refused: bool = False) -> None:
        self._failures += 1
        pause = min(_BREAKER_MAX, _BREAKER_FIRST * 2 ** (self._failures - 1))
        self._down_until = time.monotonic() + pause
        if self._down_since is None:
            self._down_since = time.monotonic()
        text = str(exc) or type(exc).__name__
        if refused or (
            not text.startswith(_TRANSIENT)
            and isinstance(exc, self._redis_module.exceptions.ResponseError)
        ):
            # Not an outage that passes: a setting to fix (once a minute).
            self._log.warn(
                "redis_refused",
                1,
                "the Redis store %s refused this process: %s",
                self.location,
                text,
            )
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
        # It may have come back empty (restarted): name the account again.
        self._registered = False
        logger.info(
            "bento_track: the Redis store %s is back after %.1f s",
            self.location,
            down,
        )

    # -- configuration -----------------------------------------------------------

    def configure(self, policy: StorePolicy, clock: object) -> None:
        """Take the worker's settings and its account (whose keys this store
        uses from now on); the clock only reaches the fallback (the budget
        runs on Redis's clock)."""
        self._policy = policy
        self.account = policy.account
        self.keys = _keys(self.namespace, policy.account.key)
        self._registered = False
        # The fallback only holds events for Redis: no budget (moving events
        # into Redis is no request), the client's memory bounds.
        self.fallback.configure(replace(policy, budgeted=False), clock)

    def _need_policy(self) -> StorePolicy:
        policy = self._policy
        assert policy is not None, "configure() first"
        return policy

    def _register(self) -> None:
        """Name this account (by `site_uuid`) in the namespace's registry,
        for `stats()` and `bento-track store`. A separate command, not part
        of a script: the registry is in another cluster slot."""
        try:
            self._redis().hset(
                _registry(self.namespace), self.account.key, self.account.site_uuid
            )
        except self._redis_module.exceptions.RedisError:
            return  # the next write tries again
        self._registered = True

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
            policy = self._need_policy()
            chunks = chunked(records, policy.max_count, policy.max_bytes)
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
                size_of(chunk),
            ]
        k = self.keys
        result = self._run("ENQUEUE", [k.q, k.tot, k.out, k.seq], args)
        kept = int(result[0])
        if kept < 0:  # applied before (a retry of a write whose answer was lost)
            return len(chunks), []
        self._out = int(result[1])
        if int(result[2]) or not self._registered:
            self._register()
        return kept, [bytes(x) for x in result[3:]]

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
            policy = self._need_policy()
            chunks = chunked(lease.records, policy.max_count, policy.max_bytes)
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
            if self._figures_at is None:
                # A first reading, in the background: `stats()` then has
                # figures to give at once.
                with self._stats_lock:
                    self._start_reading()
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
        """Epoch seconds (this host's clock) until which sending is paused, or None:
        this process's own pause or the account's on Redis (as `stats()` reads it,
        never waiting on Redis)."""
        local = self._local_pause - time.monotonic()
        until = time.time() + local if local > 0 else None
        theirs = self.stats().paused_until
        if theirs is None or (until is not None and until >= theirs):
            return until
        return theirs

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
        size = size_of(records)
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
        out), in the fallback or in limbo (after `close()`: what it left)."""
        with self._lock:  # never while close() closes the connection
            if self._final is not None:
                return sum(self._final)
            local = self.fallback.outstanding() + self._limbo_records()
            if self._usable() and self._pid == os.getpid():
                try:
                    raw = self._redis().hget(self.keys.out, self.consumer)
                    self._out = int(raw or 0)
                except self._redis_module.exceptions.RedisError as exc:
                    self._failed(exc)
            return self._out + local

    def kept(self) -> int:
        """`Store.kept`: of `outstanding()`, the events on the Redis server (as
        last read) and in a durable fallback; not those in a memory fallback
        or a write Redis never answered (`unanswered()`). Asked at exit: what
        waits in memory first moves into Redis if it answers, so the count
        is the one `close()` reports (it may be asked before or after)."""
        with self._lock:
            if self._final is not None:
                return self._final[0]
            self._save_local()
            return self._out + self.fallback.kept()

    def _save_local(self) -> None:
        """At exit: move what would end with the process (a memory fallback,
        a write in limbo) into Redis while it answers. A durable fallback
        keeps its events for the next process: left alone."""
        with self._lock:
            if self._pid != os.getpid() or self._final is not None:
                return
            while self._usable():
                before = self._ending()
                if before <= 0:
                    return
                self._catch_up()
                if self._ending() >= before:
                    return  # Redis stopped answering, or is full

    def _ending(self) -> int:
        """Events that end with this process: in a memory fallback, in limbo."""
        fallback = self.fallback
        return fallback.outstanding() - fallback.kept() + self._limbo_records()

    def unanswered(self) -> int:
        """Events of a write Redis did not answer (a timeout, a hang): Redis
        may have kept them or not. Counted as lost by `kept()`, said apart
        by `close()`."""
        return self._limbo_records()

    def _limbo_records(self) -> int:
        limbo = self._limbo
        return 0 if limbo is None or limbo.from_fallback is not None else limbo.records

    def lost(self) -> int:
        """`Store.lost`: what the fallback lost (Redis itself loses nothing we
        can count)."""
        return self.fallback.lost()

    def memory_held(self) -> int:
        """Events in this process's memory: the memory fallback and a write in limbo."""
        return self.fallback.memory_held() + self._limbo_records()

    def stats(self) -> StoreStats:
        """This account's figures, every account's in `accounts` (by
        `site_uuid`), the unassigned events. Never waits on Redis for more
        than `stats_wait` seconds, never raises for an unavailable Redis: a
        reading runs in a thread of its own, and the figures are the last it
        read, marked `stale` unless read in the last second with no reading
        out for long since (a slow or hung Redis) and no failure."""
        called = time.monotonic()
        deadline = called + self.stats_wait
        while True:
            with self._stats_lock:
                if self._pid != os.getpid():
                    self._reading = None
                    self._stats_client = None
                reading = self._reading
                if reading is None or reading.done.is_set():
                    if reading is not None and reading.started >= called:
                        break  # read during this call
                    reading = self._start_reading()
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

    def _start_reading(self) -> _Reading | None:
        """A new reading (under `_stats_lock`), unless one is out already or
        Redis is known to be unavailable."""
        current = self._reading
        if current is not None and not current.done.is_set():
            return current
        if not self._can_read():
            return None
        reading = self._reading = _Reading(time.monotonic(), threading.Event())
        threading.Thread(
            target=self._read_figures,
            args=(reading,),
            name="bento_track.redis-stats",
            daemon=True,
        ).start()
        return reading

    def _stale(self) -> bool:
        at = self._figures_at
        if at is None or self._reading_failed or not self._usable():
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

    def _can_read(self) -> bool:
        return self._usable() and self._final is None

    def read_stats(self) -> StoreStats:
        """The figures, read now (blocking up to the socket timeout: for tools
        and tests; `stats()` is the non-blocking view).

        Raises:
            RedisUnavailable: Redis cannot answer now.
        """
        with self._stats_lock:
            if self._pid != os.getpid():
                self._stats_client = None
            if self._stats_client is None:
                self._stats_client = self._new_client(":stats")
            client = self._stats_client
        try:
            figures = read_figures(
                client,
                self.namespace,
                self.account if self._policy is not None else None,
                self.location,
                self.max_bytes,
            )
        except self._redis_module.exceptions.RedisError as exc:
            raise RedisUnavailable(str(exc) or type(exc).__name__) from None
        policy = self._policy
        if policy is not None and not figures.budget_limit:
            # No request granted yet: the budget is the one this process uses.
            figures = replace(
                figures,
                budget_limit=policy.requests_per_window,
                budget_window=policy.window,
            )
        self._figures = figures
        self._figures_at = time.monotonic()
        self._reading_failed = False
        return figures

    def _read_figures(self, reading: _Reading) -> None:
        """A reading in its own thread (`stats()`)."""
        try:
            self.read_stats()
        except Exception:  # said by `stale`; the worker logs Redis's state
            self._reading_failed = True
        finally:
            reading.done.set()
            if self._final is not None:  # closed meanwhile: the last user
                self._close_stats_client()

    def _close_stats_client(self) -> None:
        with self._stats_lock:
            client, self._stats_client = self._stats_client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    def _no_figures(self) -> StoreStats:
        """Before any reading: nothing known (stale)."""
        return StoreStats(
            kind="redis",
            location=self.location,
            depth=0,
            nbytes=0,
            max_bytes=self.max_bytes,
            leased=0,
            leases=0,
            oldest_age=None,
            budget_used=0,
            budget_limit=0,
            budget_window=0.0,
            paused_until=None,
            site_uuid=self.account.site_uuid,
            stale=True,
        )

    @staticmethod
    def time_offset(raw: list[Any]) -> float:
        """This host's clock minus Redis's, from a STATS answer."""
        return time.time() - int(raw[0]) / 1000.0

    # -- processes --------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Close the connections and nothing else (a tool's store that only
        read, or ran one script: `close()` would leave the group)."""
        for client in (self._client, self._stats_client):
            if client is not None:
                client.close()
        self._client = self._stats_client = None

    def after_fork(self) -> None:
        """In a forked child: a new name, no connection, no leases; the memory fallback
        forgets the parent's events."""
        if self._pid == os.getpid():
            return  # renewed already (the client's fork hook, or our own check)
        # The parent's connections stay open for the parent: never closed
        # here (redis-py's pool also checks the pid).
        for client in (self._client, self._stats_client):
            if client is not None:
                _orphans.append(client)
        self._reset_process()
        self.fallback.after_fork()

    def close(self) -> None:
        """Move what waits locally into Redis (if it answers), leave the group, close
        the connections. What could not reach Redis is said to be lost (and
        how many); `kept()` and `outstanding()` then tell what was left."""
        with self._lock:
            if self._pid != os.getpid() or self._final is not None:
                return
            self._save_local()
            if self._usable() and (self._client is not None or self._ending()):
                # (A store never used has nothing in Redis to leave.)
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
                self.outstanding()  # what is left in Redis, as last read
                k = self.keys
                try:
                    self._run("FORGET", [k.q, k.procs, k.seq, k.out], [self.consumer])
                except RedisUnavailable:
                    pass
            unanswered = self._limbo_records()
            on_disk = self.fallback.kept()
            in_memory = self._ending() - unanswered
            self._final = (self._out + on_disk, in_memory + unanswered)
            if in_memory:
                logger.warning(
                    "bento_track: %d events could not reach the Redis store %s "
                    "and are lost with this process (configure ?fallback="
                    "sqlite:////PATH to keep them on disk)",
                    in_memory,
                    self.location,
                )
            if unanswered:
                logger.warning(
                    "bento_track: %d events were written to the Redis store %s "
                    "without an answer and may be lost with this process "
                    "(Redis may still apply the write)",
                    unanswered,
                    self.location,
                )
            self.fallback.close()
            client, self._client = self._client, None
            if client is not None:
                try:
                    client.close()
                except Exception:
                    pass
        with self._stats_lock:
            reading = self._reading
        if reading is None or reading.done.is_set():
            self._close_stats_client()
        # else: the reading closes it when it ends (Redis hangs: never wait)


#: clients inherited from a parent process (their sockets are the parent's)
_orphans: list[Any] = []


def _ms(seconds: float) -> int:
    return max(1, int(round(seconds * 1000)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stats_keys(k: _Keys) -> list[str]:
    return [k.q, k.tot, k.log, k.fly, k.pause, k.procs]


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


def _accounts(client: Any, namespace: str) -> dict[str, str]:
    """The namespace's registry: account digest -> `site_uuid`."""
    names = client.hgetall(_registry(namespace))
    return {_text(k): _text(v) for k, v in names.items()}


def read_figures(
    client: Any,
    namespace: str,
    account: Account | None,
    location: str,
    max_bytes: int,
) -> StoreStats:
    """A namespace's figures, read now (two round trips, read only): of
    `account`'s partition with every account's in `accounts`, or with None
    of the whole namespace (budget and pause then only per account). An
    account shows in `accounts` while it has events, a pause or processes
    seen in the last minute.

    Raises:
        redis.RedisError: Redis cannot answer.
    """
    legacy = _legacy_keys(namespace)
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(_registry(namespace))
    pipe.hget(legacy.tot, "n")
    pipe.exists(legacy.q)
    names, legacy_n, legacy_exists = pipe.execute()
    accounts = {_text(k): _text(v) for k, v in names.items()}
    if account is not None:
        accounts.setdefault(account.key, account.site_uuid)
    order = sorted(accounts, key=lambda key: (accounts[key], key))
    script = client.register_script(lua.STATS)
    pipe = client.pipeline(transaction=False)
    for key in order:
        script(keys=_stats_keys(_keys(namespace, key)), args=[], client=pipe)
    raws = pipe.execute() if order else []
    parts = {
        key: stats_from(raw, location, max_bytes, RedisStore.time_offset(raw))
        for key, raw in zip(order, raws, strict=True)
    }
    shown = tuple(
        _account_stats(accounts[key], part)
        for key, part in parts.items()
        if part.depth or part.paused_until is not None or part.processes
    )
    unassigned = max(0, int(legacy_n or 0)) if legacy_exists else 0
    if account is not None:
        return replace(
            parts[account.key],
            site_uuid=account.site_uuid,
            accounts=shown,
            unassigned=unassigned,
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


def open_redis_store(
    url: str,
    *,
    max_bytes: int,
    open_local: Callable[..., Store] | None = None,
) -> RedisStore:
    """The Redis store `url` names, its URL and options checked (no I/O:
    Redis may be down now; the store waits for it). Options in the query
    string: `namespace`, `visibility_timeout`, `fallback` (`memory` or a
    `sqlite:///` URL, opened by `open_local`, `url.open_store`), `host`;
    redis-py's `socket_timeout=`, `ssl_cert_reqs=`, ... (`redis_url`).

    Raises:
        ConfigurationError: naming `store`, never showing the password:
            redis-py is missing, the URL or an option is malformed, or the
            SQLite fallback cannot be used.
    """
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "store: a Redis store needs redis-py: pip install 'bento-track[redis]'",
            setting="store",
        ) from None
    parsed = parse_redis_url(url)
    ours = parsed.options
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
        parsed,
        max_bytes=max_bytes,
        namespace=namespace,
        visibility_timeout=visibility,
        fallback=fallback,
        host=host,
        location=parsed.location,
    )


def describe_redis(url: str, *, max_bytes: int) -> dict[str, Any]:
    """A Redis store's figures (the whole namespace, each account by
    `site_uuid`, the unassigned events) and the chunks each process holds,
    read without writing anything (for `bento-track store URL`).

    Raises:
        ConfigurationError: not a usable URL, Redis cannot be reached, or
            no store in that namespace.
    """
    store = open_redis_store(url, max_bytes=max_bytes, open_local=_no_fallback)
    errors = store._redis_module.exceptions
    namespace = store.namespace
    try:
        client = store._redis()
        accounts = _accounts(client, namespace)
        legacy = _legacy_keys(namespace)
        if not accounts and not client.exists(legacy.tot, legacy.q):
            raise ConfigurationError(
                f"no store in namespace {namespace!r} at {store.location}"
            )
        stats = read_figures(client, namespace, None, store.location, max_bytes)
        holders = []
        parts = [(site, _keys(namespace, key)) for key, site in accounts.items()]
        for site, k in [*parts, (None, legacy)]:
            holders += _holders(client, k, site)
    except errors.RedisError as exc:
        raise ConfigurationError(
            f"cannot read the Redis store {store.location}: {exc}"
        ) from None
    finally:
        store.drop_connections()
    return {
        **asdict(stats),
        "namespace": namespace,
        "visibility_timeout": store.visibility_timeout,
        "lease_list": holders,
    }


def _no_fallback(spec: str, *, max_bytes: int) -> Store:
    """A tool only reads Redis: a `?fallback=` is left alone, unopened."""
    return MemoryStore()


def _holders(client: Any, k: _Keys, site_uuid: str | None) -> list[dict[str, Any]]:
    """The processes holding chunks of one account (None: unassigned)."""
    if not client.exists(k.q):
        return []
    if not any(_text(g["name"]) == "ship" for g in client.xinfo_groups(k.q)):
        return []
    consumers = client.xinfo_consumers(k.q, "ship")
    found = []
    for consumer in consumers:
        if not consumer["pending"]:
            continue
        name = _text(consumer["name"])
        pending = client.xpending_range(k.q, "ship", "-", "+", 10_000, name)
        pipe = client.pipeline(transaction=False)
        for entry in pending:
            pipe.xrange(k.q, entry["message_id"], entry["message_id"])
        events = sum(int(hit[0][1][b"n"]) for hit in pipe.execute() if hit)
        host, _, rest = name.partition(":")
        found.append(
            {
                "site_uuid": site_uuid,
                "consumer": name,
                "host": host,
                "pid": int(rest.partition(":")[0] or 0),
                "chunks": int(consumer["pending"]),
                "events": events,
                "idle": round(int(consumer["idle"]) / 1000.0, 1),
            }
        )
    return found


def adopt_legacy(url: str, account: Account) -> int:
    """Hand the unassigned events of the Redis store `url` (written before
    stores knew accounts) to `account`; return how many moved. Its next
    process sends them with its keys. Chunks a live process of the old
    version still holds stay unassigned (run it again once those processes
    are gone); when none is left, the old keys are deleted. Each step is one
    atomic script, so a crash moves nothing twice. The account's bound
    (`max_store_bytes`) is not applied: these events were stored already.

    Raises:
        ConfigurationError: not a usable URL, or Redis cannot be reached.
    """
    store = open_redis_store(url, max_bytes=2**20, open_local=_no_fallback)
    errors = store._redis_module.exceptions
    namespace = store.namespace
    old, mine = _legacy_keys(namespace), _keys(namespace, account.key)
    keys = [getattr(old, name) for name in _NAMES]
    keys += [mine.q, mine.tot, mine.out]
    moved, start = 0, "-"
    try:
        client = store._redis()
        client.hset(_registry(namespace), account.key, account.site_uuid)
        while True:
            result = store._scripts["ADOPT"](
                keys=keys,
                args=[_ms(store.visibility_timeout), _ADOPT_STEP, start],
                client=client,
            )
            moved += int(result[0])
            last = _text(result[2])
            if not last:
                break
            start = "(" + last
    except errors.RedisError as exc:
        raise ConfigurationError(
            f"cannot adopt the unassigned events of the Redis store "
            f"{store.location}: {exc}"
        ) from None
    finally:
        store.drop_connections()
    return moved
