"""`RedisStore`: the `Store` on a Redis server (its design: `queues.redis`).

The store is the worker's steps over the parts that do the work: the
scripts behind typed calls (`redis_calls`), the breaker (`redis_breaker`),
what waits while Redis is out (`redis_outage`), the chunks this process
holds (`redis_ledger`) and the figures (`redis_figures`).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from .._core.records import Record
from .._internal import RateLimitedLog
from ..errors import ConfigurationError
from .account import UNNAMED, Account
from .base import Claim, Lease, Permit, Store, StorePolicy, StoreStats
from .chunks import chunked
from .memory import MemoryStore
from .redis_breaker import Breaker, RedisUnavailable
from .redis_calls import Scripts, connect, load_lazy_imports
from .redis_figures import FiguresReader, no_figures, read_figures
from .redis_keys import account_keys, registry_key
from .redis_ledger import ChunkLedger, PartBack
from .redis_outage import Op, OutageBuffer, PendingOp
from .redis_url import DEFAULT_VISIBILITY_TIMEOUT, RedisURL, parse_redis_url

__all__ = ["STATS_WAIT", "RedisStore"]

T = TypeVar("T")

#: seconds between sweeps of processes gone for `_FORGET_AFTER`
_SWEEP_EVERY = 60.0
_FORGET_AFTER = 3600.0
#: seconds `stats()` waits for a fresh reading before it answers with the
#: figures last read (marked stale): a healthy Redis answers in about a
#: millisecond; a hung one must not hold up a health check
STATS_WAIT = 0.005

#: clients inherited from a parent process (their sockets are the parent's)
_orphans: list[Any] = []


class RedisStore:
    """A `Store` on a Redis server shared by every process of every host,
    partitioned by account (see `queues.redis`).

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

        load_lazy_imports()
        parsed = url if isinstance(url, RedisURL) else parse_redis_url(url)
        if isinstance(url, str) and parsed.options:
            raise ConfigurationError(
                f"store: {', '.join(sorted(parsed.options))} go to "
                "open_redis_store (or RedisStore's arguments), not its url",
                setting="store",
            )
        self._errors = redis.exceptions
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
        self.keys = account_keys(namespace, UNNAMED.key)
        self.fallback: Store = fallback if fallback is not None else MemoryStore()
        #: seconds `stats()` waits for a fresh reading (tools that need
        #: exact figures may wait longer)
        self.stats_wait = STATS_WAIT
        self._host = host or socket.gethostname() or "host"
        self._policy: StorePolicy | None = None
        self._log = RateLimitedLog()
        self._figures = FiguresReader(
            read=self._read_figures,
            connect=lambda: connect(
                self._connection, f"bento_track:{self.consumer}:stats"
            ),
            errors=self._errors,
            usable=lambda: self._breaker.usable(),
            empty=no_figures(self.location, max_bytes, self.account.site_uuid),
        )
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
        self._scripts: Scripts | None = None
        self.consumer = f"{self._host}:{self._pid}:{secrets.token_hex(4)}"
        self._permit_seq = 0
        self._permits: dict[int, str] = {}
        self._ledger = ChunkLedger()
        self._breaker = Breaker(
            self._errors,
            self.location,
            self.fallback.location,
            self._log,
            on_recovered=self._forget_registration,
        )
        self._outage = OutageBuffer(
            self.fallback,
            write=self._enqueue,
            apply=self._apply,
            chunk=self._chunked,
            usable=self._breaker.usable,
            location=self.location,
            log=self._log,
        )
        self._local_pause = 0.0  # time.monotonic() until which we hold (429)
        self._out = 0  # this process's events in Redis, as last read
        self._registered = False  # the account is in the namespace's registry
        self._next_sweep = (
            time.monotonic() + _SWEEP_EVERY * secrets.randbelow(100) / 100
        )

    # -- calls -------------------------------------------------------------------

    def _redis(self) -> Scripts:
        """This process's scripts, on its connection (made on first use)."""
        if self._pid != os.getpid():  # a fork that ran no hook
            self.after_fork()
        if self._scripts is None:
            self._scripts = Scripts(
                connect(self._connection, f"bento_track:{self.consumer}")
            )
        return self._scripts

    def _call(self, call: Callable[[Scripts], T]) -> T:
        """`call` on this process's scripts, through the breaker.

        Raises:
            RedisUnavailable: the breaker is open or the call failed
                (`AnswerLost` when it may have run).
        """
        return self._breaker.call(lambda: call(self._redis()))

    def _try(self, call: Callable[[Scripts], object]) -> bool:
        """`_call`, for a step that may be skipped (Redis catches up by
        itself): whether it was taken."""
        try:
            self._call(call)
        except RedisUnavailable:
            return False
        return True

    def _forget_registration(self) -> None:
        # Redis may have come back empty (restarted): name the account again.
        self._registered = False

    # -- configuration -----------------------------------------------------------

    def configure(self, policy: StorePolicy, clock: object) -> None:
        """Take the worker's settings and its account (whose keys this store
        uses from now on); the clock only reaches the fallback (the budget
        runs on Redis's clock)."""
        self._policy = policy
        self.account = policy.account
        self.keys = account_keys(self.namespace, policy.account.key)
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
            self._redis().client.hset(
                registry_key(self.namespace), self.account.key, self.account.site_uuid
            )
        except self._errors.RedisError:
            return  # the next write tries again
        self._registered = True

    # -- writing -----------------------------------------------------------------

    def put(self, records: list[Record]) -> list[Record]:
        """Write `records` to Redis (under the bound), or to the fallback while Redis is
        out or the fallback still holds older events; return those dropped."""
        with self._lock:
            if self._pid != os.getpid():
                self.after_fork()
            return self._outage.put(records)

    def _chunked(self, records: list[Record]) -> list[list[Record]]:
        policy = self._need_policy()
        return chunked(records, policy.max_count, policy.max_bytes)

    def _enqueue(
        self, chunks: list[list[Record]], seq: int
    ) -> tuple[int, list[Record]]:
        """Write `chunks` as write number `seq`: (chunks kept, records of old
        chunks deleted for room). A write applied before (a retry of one
        whose answer was lost) counts as kept whole."""
        drop_oldest = self._need_policy().overflow == "drop_oldest"
        reply = self._call(
            lambda s: s.enqueue(
                self.keys, self.consumer, seq, self.max_bytes, drop_oldest, chunks
            )
        )
        if reply.applied_before:
            return len(chunks), []
        self._out = reply.outstanding
        if reply.created or not self._registered:
            self._register()
        return reply.kept, list(reply.dropped)

    def _apply(self, op: PendingOp) -> None:
        """Take `op` on Redis now (raises `RedisUnavailable`)."""
        k = self.keys
        if op.op is Op.PAUSE:
            left = self._local_pause - time.monotonic()
            if left > 0:
                self._call(lambda s: s.pause(k, left))
        elif op.op is Op.SETTLE:
            self._call(lambda s: s.settle(k, op.sids, op.sent))
        else:
            self._call(lambda s: s.release(k, self.consumer, op.sids))

    # -- claiming ------------------------------------------------------------------

    def claim(self, force: bool) -> Claim:
        """A batch with its permit (the CLAIM script), or how long to wait; while Redis
        is out, nothing (sending holds without the shared budget)."""
        policy = self._need_policy()
        with self._lock:
            if self._pid != os.getpid():
                self.after_fork()
            if not self._breaker.usable():
                return self._holding()
            self._outage.catch_up()
            hold = self._local_pause - time.monotonic()
            if hold > 0:
                return Claim(None, hold, budget_bound=True)
            self._sweep()
            member = self._next_permit()
            k, me, vis = self.keys, self.consumer, self.visibility_timeout
            try:
                reply = self._call(lambda s: s.claim(k, me, member, policy, vis, force))
            except RedisUnavailable:
                return self._holding()
            # A first reading, in the background: `stats()` then has figures
            # to give at once.
            self._figures.prime()
            if not reply.chunks:
                return Claim(
                    None,
                    reply.wait,
                    reply.waiting,
                    reply.nbytes,
                    budget_bound=reply.budget_bound,
                )
            lease = self._ledger.lease(reply.chunks)
            self._permits[self._permit_seq] = member
            lease.permit = self._permit_seq
            return Claim(lease, 0.0, reply.waiting, reply.nbytes)

    def _holding(self) -> Claim:
        """Redis is out: nothing is sent without the shared budget."""
        waiting = self._outage.waiting()
        return Claim(None, self._breaker.delay(), waiting, budget_bound=True)

    def _sweep(self) -> None:
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + _SWEEP_EVERY
        self._try(lambda s: s.sweep(self.keys, _FORGET_AFTER))

    def _next_permit(self) -> str:
        """A new permit's name (its number is the worker's `Permit`)."""
        self._permit_seq += 1
        return f"{self.consumer}:{self._permit_seq}"

    # -- the budget -------------------------------------------------------------------

    def acquire(self) -> tuple[Permit | None, float]:
        """A permit for a retry on leased events, from the shared budget."""
        policy = self._need_policy()
        with self._lock:
            if not self._breaker.usable():
                return None, self._breaker.delay()
            hold = self._local_pause - time.monotonic()
            if hold > 0:
                return None, hold
            member = self._next_permit()
            k, vis = self.keys, self.visibility_timeout
            try:
                reply = self._call(lambda s: s.acquire(k, member, policy, vis))
            except RedisUnavailable:
                return None, self._breaker.delay()
            if not reply.granted:
                return None, reply.wait
            self._permits[self._permit_seq] = member
            return self._permit_seq, 0.0

    def complete(self, permit: Permit) -> None:
        """The request made with `permit` ended: its completion enters the log."""
        with self._lock:
            member = self._permits.pop(permit, None)
            # Not taken: still "in flight" for Redis, counted as completed
            # when the visibility timeout passes, later than it was (never
            # fewer).
            if member is not None:
                self._complete(member)

    def _complete(self, member: str) -> bool:
        return self._try(lambda s: s.complete(self.keys, member))

    def pause(self, seconds: float) -> None:
        """Pause every process of the fleet for `seconds` (this one at once, even with
        Redis out)."""
        with self._lock:
            self._local_pause = max(self._local_pause, time.monotonic() + seconds)
            if self._local_pause > time.monotonic():
                self._outage.apply(PendingOp(Op.PAUSE))

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
            sids = self._ledger.sids(lease)
            if sids:
                self._try(lambda s: s.renew(self.keys, self.consumer, sids))

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
            done = self._ledger.settle(lease)
            if done:
                self._outage.apply(PendingOp(Op.SETTLE, tuple(done), sent))

    def release(self, lease: Lease) -> None:
        """Put the lease's events back for any process to take first."""
        with self._lock:
            whole, parts = self._ledger.release(lease)
            if whole:
                self._outage.apply(PendingOp(Op.RELEASE, tuple(whole)))
            for part in parts:
                # Part of a chunk (a bisection half): written as a new
                # waiting chunk, the old one deleted once nothing of it is
                # held. Not taken: left pending under our name, taken over
                # (whole) after the visibility timeout; the settled part may
                # then be sent again.
                self._rewrite(part)

    def _rewrite(self, part: PartBack) -> None:
        k, me = self.keys, self.consumer
        self._try(lambda s: s.rewrite(k, me, part.old, part.origin, part.records))

    # -- figures ----------------------------------------------------------------------

    def outstanding(self) -> int:
        """Events this process put that are still in Redis (as last read while Redis is
        out), in the fallback or in limbo (after `close()`: what it left)."""
        with self._lock:  # never while close() closes the connection
            if self._final is not None:
                return sum(self._final)
            local = self._outage.waiting()
            if self._breaker.usable() and self._pid == os.getpid():
                try:
                    raw = self._redis().client.hget(self.keys.out, self.consumer)
                    self._out = int(raw or 0)
                except self._errors.RedisError as exc:
                    self._breaker.failed(exc)
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
            self._outage.drain()

    def unanswered(self) -> int:
        """Events of a write Redis did not answer (a timeout, a hang): Redis
        may have kept them or not. Counted as lost by `kept()`, said apart
        by `close()`."""
        return self._outage.unanswered()

    def lost(self) -> int:
        """`Store.lost`: what the fallback lost (Redis itself loses nothing we
        can count)."""
        return self.fallback.lost()

    def memory_held(self) -> int:
        """Events in this process's memory: the memory fallback and a write in limbo."""
        return self.fallback.memory_held() + self._outage.unanswered()

    def stats(self) -> StoreStats:
        """This account's figures, every account's in `accounts` (by
        `site_uuid`), the unassigned events. Never waits on Redis for more
        than `stats_wait` seconds, never raises for an unavailable Redis: a
        reading runs in a thread of its own, and the figures are the last it
        read, marked `stale` unless read in the last second with no reading
        out for long since (a slow or hung Redis) and no failure."""
        return self._figures.current(self.stats_wait)

    def read_stats(self) -> StoreStats:
        """The figures, read now (blocking up to the socket timeout: for tools
        and tests; `stats()` is the non-blocking view).

        Raises:
            RedisUnavailable: Redis cannot answer now.
        """
        return self._figures.read()

    def _read_figures(self, scripts: Scripts) -> StoreStats:
        """The figures, read now on `scripts` (the readings' connection)."""
        policy = self._policy
        return read_figures(
            scripts,
            self.namespace,
            self.account if policy is not None else None,
            self.location,
            self.max_bytes,
            budget=(policy.requests_per_window, policy.window) if policy else None,
        )

    # -- processes --------------------------------------------------------------------

    def after_fork(self) -> None:
        """In a forked child: a new name, no connection, no leases; the memory fallback
        forgets the parent's events."""
        if self._pid == os.getpid():
            return  # renewed already (the client's fork hook, or our own check)
        # The parent's connections stay open for the parent: never closed
        # here (redis-py's pool also checks the pid).
        if self._scripts is not None:
            _orphans.append(self._scripts.client)
        stats_client = self._figures.after_fork()
        if stats_client is not None:
            _orphans.append(stats_client)
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
            if self._breaker.usable() and (
                self._scripts is not None or self._outage.ending()
            ):
                # (A store never used has nothing in Redis to leave.)
                self._outage.catch_up()
                for member in list(self._permits.values()):
                    if not self._complete(member):
                        break
                self._permits.clear()
                self.outstanding()  # what is left in Redis, as last read
                self._try(lambda s: s.forget(self.keys, self.consumer))
            lost = self._outage.say_lost()
            self._final = (self._out + self.fallback.kept(), lost)
            self.fallback.close()
            scripts, self._scripts = self._scripts, None
            if scripts is not None:
                try:
                    scripts.client.close()
                except Exception:
                    pass
        self._figures.close()
