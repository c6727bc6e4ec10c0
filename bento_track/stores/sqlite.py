"""`SQLiteStore`: one queue and one request budget in a file that every
process on a host shares (`Client(store="sqlite:////var/lib/app/bento.db")`).

The file (WAL mode, created owner-only: it holds subscribers' emails) holds
everything per account (`queues.account`; schema and migrations:
`sqlite_schema`), so apps of several Bento accounts may share one file:

- `queue`: encoded events, oldest first (`id`), in chunks: one row holds
  up to a tenth of a batch (`count` events of `bytes`, joined by newlines,
  which compact JSON never holds), with the lease it is under (0: waiting),
  the process that put it (`origin`), its account and when (`chunks`).
- `leases`: batches taken by a process (`holder`), with an expiry the holder
  renews before each request, and their size.
- `holders`: the processes that use the store (host, pid, start time), and
  how many of the events each put are still in the store (for `flush()`).
- `permits`: each account's request budget, a sliding-window log: when each
  request started and when it ended (NULL while in flight).
- `accounts`: each account's totals (events, bytes), 429 pause, when its
  batch last left, and budget settings; named by a digest of endpoint,
  `site_uuid` and publishable key (the keys are never written).
- `state`: the file's totals (its bound is the disk's) and counters
  (reclaimed, dropped) for operators.
- `legacy_events`: events written before stores knew accounts, never sent
  until adopted (`bento-track store URL --adopt`).

A process claims, pauses and budgets only its own account's rows. Every
change is one `BEGIN IMMEDIATE` transaction: a claim checks the pause,
the budget and the batch's age, leases the oldest waiting events and records
a permit, all at once, so processes never spend two permits on one batch nor
send a batch without one. Times are wall-clock seconds (`Clock.time()`):
monotonic clocks are not comparable across processes.

Crashes: a transaction is all or nothing. A lease whose holder died is
taken over by the next claim of any process, its events counted as
`reclaimed` (`sqlite_holders`). A file deleted or replaced under a running
process is noticed at its next operation: its events in it are counted as
lost (`lost()`, the `store_lost` drop reason), and a new file is created.

The parts: the connection (WAL, owner-only creation, file identity, fork:
`sqlite_conn`), the queue's rows (`sqlite_queue`), the budget's
(`sqlite_budget`), the processes (`sqlite_holders`), figures and the
hand-over of unassigned events (`sqlite_figures`).
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from .._core.clock import Clock, SystemClock
from .._core.records import Record
from . import sqlite_budget as budget
from . import sqlite_queue as queue
from .account import Account
from .base import Claim, Lease, Permit, StorePolicy, StoreStats
from .chunks import chunked
from .procs import host_id
from .sqlite_conn import StoreError, StoreFile, explain, transaction
from .sqlite_figures import adopt_legacy, read_figures
from .sqlite_holders import reap, register
from .sqlite_schema import SCHEMA_V1, SCHEMA_VERSION

__all__ = [
    "DEFAULT_LEASE_TIMEOUT",
    "DEFAULT_MAX_STORE_BYTES",
    "SCHEMA_V1",
    "SCHEMA_VERSION",
    "SQLiteStore",
    "StoreError",
    "adopt_legacy",
    "read_stats",
]

#: the bound on event bytes kept in a store file (chunks pack densely: the
#: file is about that size, plus a write-ahead log of a few MiB)
DEFAULT_MAX_STORE_BYTES = 256 * 1_048_576
#: seconds after which a lease of a process we cannot check (another host,
#: container or boot) is taken over; far above one request's time
DEFAULT_LEASE_TIMEOUT = 120.0
#: the stores of this process, by which `read_stats` finds a file's bound
_stores: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


class SQLiteStore:
    """A durable `Store` in one SQLite file, shared by every process of the
    host that opens it (see the module docstring).

    Args:
        path: the file (created with its directory's permissions if missing).
        max_bytes: the bound on stored event bytes; the client's `overflow`
            policy applies when it is reached.
        lease_timeout: seconds before an unrenewed lease is taken over.
        clock: the clock until a worker configures its own.
        url: how the store was named, for messages.
    """

    durable = True

    def __init__(
        self,
        path: str,
        *,
        max_bytes: int = DEFAULT_MAX_STORE_BYTES,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        clock: Clock | None = None,
        url: str | None = None,
    ) -> None:
        self.path = path
        self.location = url or f"sqlite:///{path}"
        self.max_bytes = max_bytes
        self.lease_timeout = lease_timeout
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._policy: StorePolicy | None = None
        self._db = StoreFile(path, self._file_gone, self._forget_parent)
        self._pid = os.getpid()
        self._me: int | None = None
        #: this store's account's row id (with `_me`, on first write)
        self._account: int | None = None
        #: this process's events lost with a deleted or replaced file
        self._lost = 0
        #: closed by `close()` (reads after it open the file only for themselves)
        self._closed = False
        self._host = host_id()
        _stores.add(self)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.location!r})"

    # -- connection --------------------------------------------------------------

    def open(self) -> None:
        """Open (or create, or migrate) the file and prove it is writable.

        Raises:
            StoreError: it cannot be opened, created, migrated or written.
        """
        with self._db.lock:
            conn = self._connection()
            try:
                with transaction(conn):
                    conn.execute("UPDATE state SET rows = rows WHERE id = 1")
            except sqlite3.Error as exc:
                raise StoreError(explain(self.path, exc)) from exc

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for a read (under `lock`). After `close()` a read
        (the figures asked at exit) opens the file for itself and closes it
        again: nothing else would close it."""
        with self._db.lock:
            closed = self._closed
            conn = self._connection()
            try:
                yield conn
            finally:
                if closed:
                    self._closed = True
                    if self._db.detach() is not None:
                        conn.close()

    def _connection(self) -> sqlite3.Connection:
        self._closed = False
        if self._pid != os.getpid():  # a fork that ran no hook (uWSGI)
            self._db.forget_parent()
            self._forget_parent()
        conn, fresh = self._db.connection()
        if (
            fresh
            and self._me is not None
            and not conn.execute(
                "SELECT 1 FROM holders WHERE id = ?", (self._me,)
            ).fetchone()
        ):
            self._me = self._account = None  # forgotten meanwhile
        return conn

    def _file_gone(self, conn: sqlite3.Connection) -> int:
        """The file `conn` has open was deleted or replaced (`StoreFile`):
        this process's events in it are lost; return how many."""
        lost = 0
        if self._me is not None:
            try:
                row = conn.execute(
                    "SELECT outstanding FROM holders WHERE id = ?", (self._me,)
                ).fetchone()
                lost = int(row[0]) if row else 0
            except sqlite3.Error:
                pass
        self._lost += lost
        self._me = None
        self._account = None
        return lost

    def _holder(self, conn: sqlite3.Connection) -> int:
        """This process's id in the store (and its account's, `_account`),
        registered on first write."""
        if self._me is None:
            now = self._clock.time()
            account = self._need_policy().account
            self._me, self._account = register(conn, account, self._host, now)
            reap(conn, self._me, self._host, now, self.lease_timeout, everyone=True)
        return self._me

    def _acct(self) -> int:
        """This store's account's row id (after `_holder`)."""
        account = self._account
        assert account is not None, "_holder() first"
        return account

    def _forget_parent(self) -> None:
        """In a forked child (after `StoreFile.forget_parent`): the parent's
        holder, account and losses are not ours."""
        self._me = None
        self._account = None
        self._lost = 0
        self._pid = os.getpid()

    def after_fork(self) -> None:
        """`Store.after_fork`: In a forked child: forget what belongs to the parent
        (its handles, and in memory its events)."""
        self._db.forget_parent()
        self._forget_parent()

    def close(self) -> None:
        """`Store.close`: Close handles; a later call reopens them (as the
        same holder while its events are in the store, so `outstanding()`
        after a close still counts them)."""
        with self._db.lock:
            if self._pid != os.getpid():
                return
            self._closed = True
            conn = self._db.detach()
            if conn is None:
                return
            forgotten = True
            try:
                if self._me is not None:
                    with transaction(conn):
                        # Our requests in flight ended with us; a holder
                        # with nothing left in the store is forgotten.
                        conn.execute(
                            "UPDATE permits SET done = ? WHERE holder = ? AND done IS NULL",
                            (self._clock.time(), self._me),
                        )
                        forgotten = bool(
                            conn.execute(
                                "DELETE FROM holders WHERE id = ? AND outstanding <= 0 "
                                "AND id NOT IN (SELECT holder FROM leases)",
                                (self._me,),
                            ).rowcount
                        )
            finally:
                if forgotten:
                    self._me = None
                    self._account = None
                conn.close()

    # -- configuration -----------------------------------------------------------

    def configure(self, policy: StorePolicy, clock: object) -> None:
        """`Store.configure`: Take the worker's settings and clock (a `Clock`);
        called by every new worker, so also after a fork."""
        self._policy = policy
        self._clock = cast("Clock", clock)

    def _budgeted(self) -> bool:
        """Whether claims spend the budget (`StorePolicy.budgeted`; until a
        worker configures the store, they do)."""
        return self._policy is None or self._policy.budgeted

    def _need_policy(self) -> StorePolicy:
        policy = self._policy
        assert policy is not None, "configure() first"
        return policy

    # -- queue -------------------------------------------------------------------

    def put(self, records: list[Record]) -> list[Record]:
        """`Store.put`: Store `records` (oldest first) under the bound; return
        those the overflow policy dropped (new or old ones) to be reported."""
        policy = self._need_policy()
        with self._db.lock:
            conn = self._connection()
            with transaction(conn):
                me = self._holder(conn)
                now = self._clock.time()
                stored = conn.execute("SELECT bytes FROM state").fetchone()[0]
                keep = records
                dropped: list[Record] = []
                if policy.overflow != "drop_oldest":
                    room = self.max_bytes - stored
                    total = 0
                    fit = 0
                    for record in records:
                        total += len(record) + 1
                        if total > room:
                            break
                        fit += 1
                    if fit < len(records):
                        keep, dropped = records[:fit], records[fit:]
                if keep:
                    chunks = chunked(keep, policy.max_count, policy.max_bytes)
                    stored += queue.insert(conn, self._acct(), me, now, chunks)
                if policy.overflow == "drop_oldest" and stored > self.max_bytes:
                    excess = stored - self.max_bytes
                    dropped = queue.trim_oldest(conn, self._acct(), excess)
                if dropped:
                    conn.execute(
                        "UPDATE state SET dropped = dropped + ?", (len(dropped),)
                    )
        return dropped

    def claim(self, force: bool) -> Claim:
        """`Store.claim`: A due batch with its permit, or how long to wait (see
        `Claim`). `force`: a flush is waiting, so a partial batch is due now."""
        policy = self._need_policy()
        with self._db.lock:
            conn = self._connection()
            if self._me is not None and not self._rows(conn):
                # An idle account: a read, not a write lock, for each poll
                # of each idle process (leases and their owners hold events).
                return Claim(None, None)
            with transaction(conn):
                me = self._holder(conn)
                account = self._acct()
                now = self._clock.time()
                reap(conn, me, self._host, now, self.lease_timeout)
                rows, nbytes, paused, last_sent = conn.execute(
                    "SELECT rows, bytes, paused_until, last_sent FROM accounts "
                    "WHERE id = ?",
                    (account,),
                ).fetchone()
                leased, leased_bytes = conn.execute(
                    "SELECT coalesce(sum(count), 0), coalesce(sum(bytes), 0) "
                    "FROM leases WHERE account = ?",
                    (account,),
                ).fetchone()
                count = rows - leased
                nbytes -= leased_bytes
                if count <= 0:
                    return Claim(None, None)
                hold = 0.0
                if policy.budgeted:
                    hold = max(paused - now, self._budget_wait(conn, now, policy))
                oldest = conn.execute(
                    "SELECT created FROM queue WHERE account = ? AND lease = 0 "
                    "ORDER BY id LIMIT 1",
                    (account,),
                ).fetchone()
                since = None if oldest is None else max(oldest[0], last_sent)
                due = policy.due_in(count, nbytes, since, now, force=force) or 0.0
                delay = max(hold, due)
                if delay > 0.0:
                    return Claim(None, delay, count, nbytes, budget_bound=hold > 0.0)
                expires = now + self.lease_timeout
                lease = queue.take(
                    conn, account, me, expires, policy.max_count, policy.max_bytes
                )
                if lease is None:
                    return Claim(None, None)
                if policy.budgeted:
                    lease.permit = self._grant(conn, me, now, policy)
                return Claim(lease, 0.0, count, nbytes)

    def _rows(self, conn: sqlite3.Connection) -> int:
        """Events of this account in the store (leased ones included)."""
        row = conn.execute(
            "SELECT rows FROM accounts WHERE id = ?", (self._acct(),)
        ).fetchone()
        return int(row[0]) if row else 0

    def split(self, lease: Lease) -> tuple[Lease, Lease]:
        """`Store.split`: Two halves of `lease` (a rejected batch's bisection) that
        can be settled apart, both still leased by this process."""
        if len(set(lease.ids)) < len(lease.ids):
            lease = self._one_row_each(lease)
        return lease.split()

    def _one_row_each(self, lease: Lease) -> Lease:
        """Rewrite a lease's chunks as one row per event (still leased), so
        halves of a bisection can be settled apart. Rare: a rejected batch."""
        with self._db.lock:
            conn = self._connection()
            with transaction(conn):
                now = self._clock.time()
                return queue.one_row_each(conn, self._acct(), lease, now)

    # -- budget ------------------------------------------------------------------

    def _budget_wait(
        self, conn: sqlite3.Connection, now: float, policy: StorePolicy
    ) -> float:
        return budget.wait(
            conn, self._acct(), now, policy.requests_per_window, policy.window
        )

    def _grant(
        self, conn: sqlite3.Connection, me: int, now: float, policy: StorePolicy
    ) -> Permit:
        limit, window = policy.requests_per_window, policy.window
        return budget.grant(conn, self._acct(), me, now, limit, window)

    def acquire(self) -> tuple[Permit | None, float]:
        """`Store.acquire`: A permit for a retry on leased events: (permit, 0.0),
        or (None, seconds to wait) while the budget or a pause forbids a request.
        A store without a budget grants every request."""
        policy = self._need_policy()
        if not policy.budgeted:
            return 0, 0.0
        with self._db.lock:
            conn = self._connection()
            with transaction(conn):
                me = self._holder(conn)
                now = self._clock.time()
                paused = budget.paused_until(conn, self._acct())
                hold = max(paused - now, self._budget_wait(conn, now, policy))
                if hold > 0.0:
                    return None, hold
                return self._grant(conn, me, now, policy), 0.0

    def complete(self, permit: Permit) -> None:
        """`Store.complete`: The request made with `permit` ended (answered or
        failed)."""
        if not self._budgeted():
            return
        with self._db.lock:
            conn = self._connection()
            with transaction(conn):
                conn.execute(
                    "UPDATE permits SET done = ? WHERE id = ?",
                    (self._clock.time(), permit),
                )

    def pause(self, seconds: float) -> None:
        """`Store.pause`: Stop every sender of this store for `seconds` (never
        shortens); nothing for a store without a budget (it sends nothing)."""
        if not self._budgeted():
            return
        with self._db.lock:
            conn = self._connection()
            with transaction(conn):
                self._holder(conn)
                conn.execute(
                    "UPDATE accounts SET paused_until = max(paused_until, ?) "
                    "WHERE id = ?",
                    (self._clock.time() + seconds, self._acct()),
                )

    def paused_until(self) -> float | None:
        """`Store.paused_until`: Epoch seconds until which sending is paused, or
        None."""
        with self._db.lock:
            conn = self._connection()
            if self._me is None:
                with transaction(conn):
                    self._holder(conn)
            until = budget.paused_until(conn, self._acct())
        return float(until) if until > self._clock.time() else None

    # -- settling leases -----------------------------------------------------------

    def renew(self, lease: Lease) -> None:
        """`Store.renew`: Keep `lease` from expiring (before each request on it)."""
        with self._db.lock:
            conn = self._connection()
            with transaction(conn):
                conn.execute(
                    "UPDATE leases SET expires = ? WHERE id = ?",
                    (self._clock.time() + self.lease_timeout, lease.token),
                )

    def ack(self, lease: Lease) -> None:
        """`Store.ack`: Bento accepted the lease's events: delete them."""
        self._remove(lease, sent=True)

    def reject(self, lease: Lease) -> None:
        """`Store.reject`: Bento refused the lease's events for good: delete them."""
        self._remove(lease, sent=False)

    def _remove(self, lease: Lease, *, sent: bool) -> None:
        if not lease.ids:
            return
        with self._db.lock:
            conn = self._connection()
            with transaction(conn):
                self._holder(conn)
                queue.delete(conn, self._acct(), lease)
                if sent:
                    conn.execute(
                        "UPDATE accounts SET last_sent = ? WHERE id = ?",
                        (self._clock.time(), self._acct()),
                    )
                empty = conn.execute("SELECT rows FROM state").fetchone()[0] == 0
            if empty:
                queue.give_back_disk(conn)

    def release(self, lease: Lease) -> None:
        """`Store.release`: Put the lease's events back, in order, for a later try."""
        if not lease.ids:
            return
        with self._db.lock:
            conn = self._connection()
            with transaction(conn):
                queue.put_back(conn, lease)

    # -- figures ---------------------------------------------------------------------

    def outstanding(self) -> int:
        """`Store.outstanding`: Events this process put that are still in the
        store."""
        if self._me is None:
            return 0
        with self._reading() as conn:
            row = conn.execute(
                "SELECT outstanding FROM holders WHERE id = ?", (self._me,)
            ).fetchone()
        return int(row[0]) if row else 0

    def kept(self) -> int:
        """`Store.kept`: every event of this process still in the file
        outlives it (a deleted file's are `lost()`, not kept)."""
        return self.outstanding()

    def unanswered(self) -> int:
        """`Store.unanswered`: none (a SQLite write is all or nothing)."""
        return 0

    def lost(self) -> int:
        """Events of this process lost with a file deleted or replaced under
        it (see the module docstring)."""
        return self._lost

    def memory_held(self) -> int:
        """`Store.memory_held`: Events the store keeps in this process's memory
        (what the capture-time `max_queue_size` bound counts besides the inbox)."""
        return 0

    def stats(self) -> StoreStats:
        """`Store.stats`: this account's figures, with every account's depth
        (by `site_uuid`) and the file's counters."""
        policy = self._policy
        with self._reading() as conn:
            return read_stats(
                conn,
                self._clock.time(),
                self.location,
                self.path,
                account=policy.account if policy is not None else None,
            )


def read_stats(
    conn: sqlite3.Connection,
    now: float,
    location: str,
    path: str,
    account: Account | None = None,
) -> StoreStats:
    """The figures of the store behind `conn` (also for `bento-track store`):
    of `account`'s partition, or with None of the whole file (budget and
    pause are then per account only, in `accounts`). Its bound is the one a
    store of this process gives the file, else the default."""
    max_bytes = DEFAULT_MAX_STORE_BYTES
    for store in list(_stores):
        if store.path == path:
            max_bytes = store.max_bytes
    return read_figures(conn, now, location, max_bytes, account)
