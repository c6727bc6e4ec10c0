"""`SQLiteStore`: one queue and one request budget in a file that every
process on a host shares (`Client(store="sqlite:////var/lib/app/bento.db")`).

The file (WAL mode, created owner-only: it holds subscribers' emails) holds
everything per account (`queues.account`; schema and migrations:
`sqlite_schema`), so apps of several Bento accounts may share one file:

- `queue`: encoded events, oldest first (`id`), in chunks: one row holds
  up to a tenth of a batch (`count` events of `bytes`, joined by newlines,
  which compact JSON never holds), with the lease it is under (0: waiting),
  the process that put it (`origin`), its account and when. One row per
  event would cost
  more in SQLite than everything else the worker does for an event; a
  chunk is written, leased and deleted as one row. A batch takes whole
  chunks, so it may leave up to a chunk's worth of room.
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

Crashes: a transaction is all or nothing, and `synchronous=NORMAL` in WAL
mode keeps every committed transaction through a process crash (a power cut
may lose the last ones). A lease whose holder died is taken over at the next
claim of any process: at once when the holder was on this host (its pid is
gone, or runs another program: the start time differs), else when the lease
expires. Its events may then be sent twice (if Bento had accepted them just
before the crash): they are counted as `reclaimed`.

A file deleted or replaced under a running process is noticed at the next
operation (the path no longer names the file the connection has open): the
events of this process that were in it are counted as lost (`lost()`, the
`store_lost` drop reason), an error is logged, and a new file is created at
the path (`StoreError` for that operation, counted as a store error).

Fork: a connection never crosses a fork. The child forgets the parent's
connection (without closing it: SQLite's close would touch the parent's
locks) and opens its own on first use. A fork hook holds every store's lock
around `fork()` so no thread of ours is inside SQLite when it happens.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from .._delivery.batcher import Record
from .._delivery.budget import log_delay
from .._delivery.clock import Clock, SystemClock
from .._delivery.kinds import KINDS, kind_of
from .._internal import logger
from .account import Account
from .base import AccountStats, Claim, Lease, Permit, StorePolicy, StoreStats
from .chunks import chunked, size_of
from .procs import host_id, is_alive, start_time
from .sqlite_schema import SCHEMA_V1, SCHEMA_VERSION, check_ours, migrate

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
#: seconds SQLite waits for another process's transaction before failing
BUSY_TIMEOUT = 10.0
#: seconds to wait before asking again when only requests in flight (their
#: end unknown) fill the budget
_IN_FLIGHT_POLL = 0.05
#: free pages (4 KiB each) worth returning to the disk when the store empties
_VACUUM_PAGES = 256
#: a thread waits this long for a store's lock around fork() before forking
#: anyway (it never deadlocks the host's fork)
_FORK_LOCK_TIMEOUT = 10.0

_stores: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()
# Connections inherited from a parent process: never closed nor collected in
# the child (closing would release or checkpoint what the parent holds).
_orphans: list[sqlite3.Connection] = []


class StoreError(Exception):
    """The store file cannot be opened or written (the message says why)."""


def _size(record: Record) -> int:
    return len(record) + 1


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
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._me: int | None = None
        #: this store's account's row id (with `_me`, on first write)
        self._account: int | None = None
        #: (st_dev, st_ino) of the file the connection has open
        self._file: tuple[int, int] | None = None
        #: this process's events lost with a deleted or replaced file
        self._lost = 0
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
        with self._lock:
            conn = self._connection()
            try:
                with self._transaction(conn):
                    conn.execute("UPDATE state SET rows = rows WHERE id = 1")
            except sqlite3.Error as exc:
                raise StoreError(_explain(self.path, exc)) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # a fork that ran no hook (uWSGI)
            self._forget_parent()
        conn = self._conn
        if conn is not None and self._file != _identity(self.path):
            self._file_gone(conn)
            conn = None
        if conn is None:
            deadline = time.monotonic() + BUSY_TIMEOUT
            while True:
                try:
                    conn = self._connect()
                    break
                except sqlite3.OperationalError as exc:
                    # Switching a new file to WAL can fail at once with "locked"
                    # while another process does the same (SQLite's busy
                    # handler is not asked then): try again, within a deadline.
                    if "locked" in str(exc) and time.monotonic() < deadline:
                        time.sleep(0.01)
                        continue
                    raise StoreError(_explain(self.path, exc)) from exc
                except sqlite3.Error as exc:
                    raise StoreError(_explain(self.path, exc)) from exc
            self._conn = conn
            if (
                self._me is not None
                and not conn.execute(
                    "SELECT 1 FROM holders WHERE id = ?", (self._me,)
                ).fetchone()
            ):
                self._me = self._account = None  # forgotten meanwhile
        return conn

    def _connect(self) -> sqlite3.Connection:
        _create_private(self.path)
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT,
            isolation_level=None,  # transactions are explicit
            check_same_thread=False,  # used under self._lock only
        )
        try:
            # Before anything is written (even the journal mode): another
            # program's database is refused untouched.
            check_ours(conn)
            # A new file: pages freed by delivered events go back to the
            # disk in steps (an outage's backlog does not stay forever).
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(
                    f"cannot use WAL mode here (journal mode {mode})"
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA journal_size_limit = 67108864")
            with self._transaction(conn):
                migrate(conn)
            self._file = _identity(self.path)
        except BaseException:
            conn.close()
            raise
        return conn

    def _file_gone(self, conn: sqlite3.Connection) -> None:
        """The path no longer names the file `conn` has open (deleted or
        replaced): count this process's events in it as lost, say so, and
        let the next connection create a new file."""
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
        self._conn = None
        self._me = None
        self._account = None
        self._file = None
        try:
            conn.close()
        except sqlite3.Error:
            pass
        logger.error(
            "bento_track: the store file %s was deleted or replaced while this "
            "process used it; %d events of this process in it are lost, and a "
            "new store file is created there",
            self.path,
            lost,
        )
        raise StoreError(f"the store file {self.path} was deleted or replaced")

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _holder(self, conn: sqlite3.Connection) -> int:
        """This process's id in the store (and its account's, `_account`),
        registered on first write."""
        if self._me is None:
            account = self._need_policy().account
            conn.execute(
                "INSERT OR IGNORE INTO accounts (key, site_uuid) VALUES (?, ?)",
                (account.key, account.site_uuid),
            )
            self._account = int(
                conn.execute(
                    "SELECT id FROM accounts WHERE key = ?", (account.key,)
                ).fetchone()[0]
            )
            pid = os.getpid()
            cursor = conn.execute(
                "INSERT INTO holders (account, host, pid, started, opened) "
                "VALUES (?, ?, ?, ?, ?)",
                (self._account, self._host, pid, start_time(pid), self._clock.time()),
            )
            me = cursor.lastrowid
            assert me is not None
            self._me = me
            self._reap(conn, self._clock.time(), everyone=True)
        return self._me

    def _acct(self) -> int:
        """This store's account's row id (after `_holder`)."""
        account = self._account
        assert account is not None, "_holder() first"
        return account

    def _forget_parent(self) -> None:
        if self._conn is not None:
            _orphans.append(self._conn)
        self._conn = None
        self._me = None
        self._account = None
        self._lost = 0
        self._pid = os.getpid()
        self._lock = threading.RLock()

    def after_fork(self) -> None:
        """`Store.after_fork`: In a forked child: forget what belongs to the parent
        (its handles, and in memory its events)."""
        self._forget_parent()

    def close(self) -> None:
        """`Store.close`: Close handles; a later call reopens them (as the
        same holder while its events are in the store, so `outstanding()`
        after a close still counts them)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None or self._pid != os.getpid():
                return
            forgotten = True
            try:
                if self._me is not None:
                    with self._transaction(conn):
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
        with self._lock:
            conn = self._connection()
            with self._transaction(conn):
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
                        total += _size(record)
                        if total > room:
                            break
                        fit += 1
                    if fit < len(records):
                        keep, dropped = records[:fit], records[fit:]
                if keep:
                    account = self._acct()
                    rows = [
                        (account, me, now, len(c), size_of(c), b"\n".join(c))
                        for c in chunked(keep, policy.max_count, policy.max_bytes)
                    ]
                    conn.executemany(
                        "INSERT INTO queue (account, origin, created, count, bytes, "
                        "data) VALUES (?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                    added = sum(row[4] for row in rows)
                    self._count(conn, len(keep), added)
                    conn.execute(
                        "UPDATE holders SET outstanding = outstanding + ? WHERE id = ?",
                        (len(keep), me),
                    )
                    stored += added
                if policy.overflow == "drop_oldest" and stored > self.max_bytes:
                    dropped = self._trim_oldest(conn, stored - self.max_bytes)
                if dropped:
                    conn.execute(
                        "UPDATE state SET dropped = dropped + ?", (len(dropped),)
                    )
        return dropped

    def _count(self, conn: sqlite3.Connection, rows: int, nbytes: int) -> None:
        """Add to the file's and this account's totals (negative: remove)."""
        conn.execute(
            "UPDATE state SET rows = rows + ?, bytes = bytes + ?", (rows, nbytes)
        )
        conn.execute(
            "UPDATE accounts SET rows = rows + ?, bytes = bytes + ? WHERE id = ?",
            (rows, nbytes, self._acct()),
        )

    def _trim_oldest(self, conn: sqlite3.Connection, excess: int) -> list[Record]:
        """Delete this account's oldest waiting chunks until `excess` bytes
        are gone (or none of its own is left: another account's events are
        never dropped for this one's)."""
        out: list[Record] = []
        origins: Counter[int] = Counter()
        freed = 0
        last = 0
        account = self._acct()
        while freed < excess:
            rows = conn.execute(
                "SELECT id, origin, count, bytes, data FROM queue "
                "WHERE account = ? AND lease = 0 AND id > ? ORDER BY id LIMIT 64",
                (account, last),
            ).fetchall()
            if not rows:
                break
            for row_id, origin, count, size, data in rows:
                last = row_id
                out += data.split(b"\n")
                origins[origin] += count
                freed += size
                if freed >= excess:
                    break
        if out:
            conn.execute(
                "DELETE FROM queue WHERE account = ? AND lease = 0 AND id <= ?",
                (account, last),
            )
            self._count(conn, -len(out), -freed)
            self._settle_origins(conn, origins)
        return out

    def _settle_origins(self, conn: sqlite3.Connection, origins: Counter[int]) -> None:
        conn.executemany(
            "UPDATE holders SET outstanding = outstanding - ? WHERE id = ?",
            [(n, origin) for origin, n in origins.items()],
        )

    def claim(self, force: bool) -> Claim:
        """`Store.claim`: A due batch with its permit, or how long to wait (see
        `Claim`). `force`: a flush is waiting, so a partial batch is due now."""
        policy = self._need_policy()
        with self._lock:
            conn = self._connection()
            if self._me is not None and not self._rows(conn):
                # An idle account: a read, not a write lock, for each poll
                # of each idle process (leases and their owners hold events).
                return Claim(None, None)
            with self._transaction(conn):
                me = self._holder(conn)
                account = self._acct()
                now = self._clock.time()
                self._reap(conn, now)
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
                    hold = max(paused - now, self._budget_delay(conn, now, policy))
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
                lease = self._lease(conn, me, now, policy)
                if lease is None:
                    return Claim(None, None)
                if policy.budgeted:
                    lease.permit = self._grant(conn, me, now)
                return Claim(lease, 0.0, count, nbytes)

    def _rows(self, conn: sqlite3.Connection) -> int:
        """Events of this account in the store (leased ones included)."""
        row = conn.execute(
            "SELECT rows FROM accounts WHERE id = ?", (self._acct(),)
        ).fetchone()
        return int(row[0]) if row else 0

    def _lease(
        self, conn: sqlite3.Connection, me: int, now: float, policy: StorePolicy
    ) -> Lease | None:
        ids: list[int] = []
        origins: list[int] = []
        records: list[Record] = []
        size = 0
        last = 0
        full = False
        account = self._acct()
        limit = policy.max_count
        while not full:
            rows = conn.execute(
                "SELECT id, origin, count, bytes, data FROM queue "
                "WHERE account = ? AND lease = 0 AND id > ? ORDER BY id LIMIT 64",
                (account, last),
            ).fetchall()
            if not rows:
                break
            for row_id, origin, count, nbytes, data in rows:
                if not records:  # the batch's kind is its first chunk's
                    limit = min(limit, KINDS[kind_of(data)].max_count)
                if records and (
                    len(records) + count > limit
                    or size + nbytes > policy.max_bytes
                    or kind_of(data) is not kind_of(records[0])
                ):
                    full = True
                    break
                last = row_id
                size += nbytes
                records += data.split(b"\n")
                ids += [row_id] * count
                origins += [origin] * count
        if not records:
            return None
        cursor = conn.execute(
            "INSERT INTO leases (account, holder, expires, count, bytes) "
            "VALUES (?, ?, ?, ?, ?)",
            (account, me, now + self.lease_timeout, len(records), size),
        )
        token = cursor.lastrowid
        assert token is not None
        # The account's first waiting chunks are exactly its waiting ones in
        # this range (other accounts' chunks may lie between them).
        conn.execute(
            "UPDATE queue SET lease = ? "
            "WHERE account = ? AND lease = 0 AND id BETWEEN ? AND ?",
            (token, account, ids[0], ids[-1]),
        )
        return Lease(token, records, ids, origins)

    def split(self, lease: Lease) -> tuple[Lease, Lease]:
        """`Store.split`: Two halves of `lease` (a rejected batch's bisection) that
        can be settled apart, both still leased by this process."""
        if len(set(lease.ids)) < len(lease.ids):
            lease = self._one_row_each(lease)
        return lease.split()

    def _one_row_each(self, lease: Lease) -> Lease:
        """Rewrite a lease's chunks as one row per event (still leased), so
        halves of a bisection can be settled apart. Rare: a rejected batch."""
        with self._lock:
            conn = self._connection()
            with self._transaction(conn):
                conn.execute(
                    "DELETE FROM queue WHERE lease = ? AND id BETWEEN ? AND ?",
                    (lease.token, lease.ids[0], lease.ids[-1]),
                )
                now = self._clock.time()
                account = self._acct()
                ids = []
                for record, origin in zip(lease.records, lease.origins, strict=True):
                    cursor = conn.execute(
                        "INSERT INTO queue (account, lease, origin, created, count, "
                        "bytes, data) VALUES (?, ?, ?, ?, 1, ?, ?)",
                        (account, lease.token, origin, now, _size(record), record),
                    )
                    assert cursor.lastrowid is not None
                    ids.append(cursor.lastrowid)
        return Lease(lease.token, lease.records, ids, lease.origins, lease.permit)

    # -- budget ------------------------------------------------------------------

    def _budget_delay(
        self, conn: sqlite3.Connection, now: float, policy: StorePolicy
    ) -> float:
        limit, window = policy.requests_per_window, policy.window
        account = self._acct()
        stored_window = conn.execute(
            "SELECT max(budget_window) FROM accounts"
        ).fetchone()[0]
        # Forget permits no process's window can still see.
        conn.execute(
            "DELETE FROM permits WHERE done IS NOT NULL AND done < ?",
            (now - max(window, stored_window or 0.0) - 1.0,),
        )
        done = [
            row[0]
            for row in conn.execute(
                "SELECT done FROM permits WHERE account = ? AND done IS NOT NULL "
                "ORDER BY done",
                (account,),
            )
        ]
        in_flight = conn.execute(
            "SELECT count(*) FROM permits WHERE account = ? AND done IS NULL",
            (account,),
        ).fetchone()[0]
        delay = log_delay(done, in_flight, limit, window, now)
        return _IN_FLIGHT_POLL if delay is None else delay

    def _grant(self, conn: sqlite3.Connection, me: int, now: float) -> Permit:
        policy = self._need_policy()
        account = self._acct()
        cursor = conn.execute(
            "INSERT INTO permits (account, holder, started) VALUES (?, ?, ?)",
            (account, me, now),
        )
        conn.execute(
            "UPDATE accounts SET budget_limit = ?, budget_window = ? WHERE id = ?",
            (policy.requests_per_window, policy.window, account),
        )
        permit = cursor.lastrowid
        assert permit is not None
        return permit

    def acquire(self) -> tuple[Permit | None, float]:
        """`Store.acquire`: A permit for a retry on leased events: (permit, 0.0),
        or (None, seconds to wait) while the budget or a pause forbids a request.
        A store without a budget grants every request."""
        policy = self._need_policy()
        if not policy.budgeted:
            return 0, 0.0
        with self._lock:
            conn = self._connection()
            with self._transaction(conn):
                me = self._holder(conn)
                now = self._clock.time()
                paused = self._paused(conn)
                hold = max(paused - now, self._budget_delay(conn, now, policy))
                if hold > 0.0:
                    return None, hold
                return self._grant(conn, me, now), 0.0

    def complete(self, permit: Permit) -> None:
        """`Store.complete`: The request made with `permit` ended (answered or
        failed)."""
        if not self._budgeted():
            return
        with self._lock:
            conn = self._connection()
            with self._transaction(conn):
                conn.execute(
                    "UPDATE permits SET done = ? WHERE id = ?",
                    (self._clock.time(), permit),
                )

    def pause(self, seconds: float) -> None:
        """`Store.pause`: Stop every sender of this store for `seconds` (never
        shortens); nothing for a store without a budget (it sends nothing)."""
        if not self._budgeted():
            return
        with self._lock:
            conn = self._connection()
            with self._transaction(conn):
                self._holder(conn)
                conn.execute(
                    "UPDATE accounts SET paused_until = max(paused_until, ?) "
                    "WHERE id = ?",
                    (self._clock.time() + seconds, self._acct()),
                )

    def paused_until(self) -> float | None:
        """`Store.paused_until`: Epoch seconds until which sending is paused, or
        None."""
        with self._lock:
            conn = self._connection()
            if self._me is None:
                with self._transaction(conn):
                    self._holder(conn)
            until = self._paused(conn)
        return float(until) if until > self._clock.time() else None

    def _paused(self, conn: sqlite3.Connection) -> float:
        """This account's pause (epoch seconds; 0 or past: none)."""
        row = conn.execute(
            "SELECT paused_until FROM accounts WHERE id = ?", (self._acct(),)
        ).fetchone()
        return float(row[0]) if row else 0.0

    # -- settling leases -----------------------------------------------------------

    def renew(self, lease: Lease) -> None:
        """`Store.renew`: Keep `lease` from expiring (before each request on it)."""
        with self._lock:
            conn = self._connection()
            with self._transaction(conn):
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
        with self._lock:
            conn = self._connection()
            with self._transaction(conn):
                self._holder(conn)
                gone = conn.execute(
                    "DELETE FROM queue WHERE lease = ? AND id BETWEEN ? AND ?",
                    (lease.token, lease.ids[0], lease.ids[-1]),
                ).rowcount
                if gone == len(set(lease.ids)):
                    size = size_of(lease.records)
                    self._settle_origins(conn, Counter(lease.origins))
                    self._count(conn, -len(lease.records), -size)
                    self._shrink_lease(conn, lease.token, len(lease.records), size)
                elif gone:  # pragma: no cover - a lease taken over in part
                    self._recount(conn)
                if sent:
                    conn.execute(
                        "UPDATE accounts SET last_sent = ? WHERE id = ?",
                        (self._clock.time(), self._acct()),
                    )
                empty = conn.execute("SELECT rows FROM state").fetchone()[0] == 0
            if empty:
                self._give_back_disk(conn)

    def _give_back_disk(self, conn: sqlite3.Connection) -> None:
        """Once a backlog is delivered, return its pages to the disk (the
        file would otherwise keep its peak size, reused but never freed)."""
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        if free >= _VACUUM_PAGES:
            # sqlite3_exec steps the pragma to its end (one step frees one page).
            conn.executescript("PRAGMA incremental_vacuum;")

    def release(self, lease: Lease) -> None:
        """`Store.release`: Put the lease's events back, in order, for a later try."""
        if not lease.ids:
            return
        with self._lock:
            conn = self._connection()
            with self._transaction(conn):
                back = conn.execute(
                    "UPDATE queue SET lease = 0 WHERE lease = ? AND id BETWEEN ? AND ?",
                    (lease.token, lease.ids[0], lease.ids[-1]),
                ).rowcount
                size = size_of(lease.records)
                if back:
                    self._shrink_lease(conn, lease.token, len(lease.records), size)

    def _shrink_lease(
        self, conn: sqlite3.Connection, token: int, count: int, size: int
    ) -> None:
        conn.execute(
            "UPDATE leases SET count = count - ?, bytes = bytes - ? WHERE id = ?",
            (count, size, token),
        )
        conn.execute("DELETE FROM leases WHERE id = ? AND count <= 0", (token,))

    def _recount(self, conn: sqlite3.Connection) -> None:
        """Rebuild the totals and lease sizes from the rows themselves."""
        conn.execute(
            "UPDATE state SET "
            "rows = (SELECT coalesce(sum(count), 0) FROM queue) "
            "+ (SELECT coalesce(sum(count), 0) FROM legacy_events), "
            "bytes = (SELECT coalesce(sum(bytes), 0) FROM queue) "
            "+ (SELECT coalesce(sum(bytes), 0) FROM legacy_events)"
        )
        conn.execute(
            "UPDATE accounts SET "
            "rows = (SELECT coalesce(sum(count), 0) FROM queue "
            "WHERE account = accounts.id), "
            "bytes = (SELECT coalesce(sum(bytes), 0) FROM queue "
            "WHERE account = accounts.id)"
        )
        conn.execute(
            "UPDATE leases SET "
            "count = (SELECT coalesce(sum(count), 0) FROM queue "
            "WHERE lease = leases.id), "
            "bytes = (SELECT coalesce(sum(bytes), 0) FROM queue "
            "WHERE lease = leases.id)"
        )
        conn.execute("DELETE FROM leases WHERE count <= 0")

    # -- dead processes --------------------------------------------------------------

    def _reap(
        self, conn: sqlite3.Connection, now: float, everyone: bool = False
    ) -> None:
        """Take over leases (and close permits in flight) of processes that
        died: on this host at once, elsewhere when a lease expires. With
        `everyone`, also forget dead processes of this host that hold nothing."""
        me = self._me
        alive: dict[int, bool] = {}

        def dead(holder: int, host: str | None, pid: int | None, started: Any) -> bool:
            if holder not in alive:
                if host is None or pid is None:
                    alive[holder] = False  # its process row is gone
                elif host != self._host:
                    alive[holder] = True  # cannot tell: the lease expiry decides
                else:
                    alive[holder] = is_alive(pid, started)
            return not alive[holder]

        leases = conn.execute(
            "SELECT l.id, l.holder, l.expires, l.count, h.host, h.pid, h.started "
            "FROM leases l LEFT JOIN holders h ON h.id = l.holder WHERE l.holder != ?",
            (me,),
        ).fetchall()
        taken = 0
        for token, holder, expires, count, host, pid, started in leases:
            if expires < now or dead(holder, host, pid, started):
                conn.execute("UPDATE queue SET lease = 0 WHERE lease = ?", (token,))
                conn.execute("DELETE FROM leases WHERE id = ?", (token,))
                taken += count
        if taken:
            conn.execute("UPDATE state SET reclaimed = reclaimed + ?", (taken,))
        flying = conn.execute(
            "SELECT p.id, p.holder, p.started, h.host, h.pid, h.started "
            "FROM permits p LEFT JOIN holders h ON h.id = p.holder "
            "WHERE p.done IS NULL AND p.holder != ?",
            (me,),
        ).fetchall()
        for permit, holder, began, host, pid, started in flying:
            # A dead process's request, if it ever arrived, arrived by now.
            if began < now - self.lease_timeout or dead(holder, host, pid, started):
                conn.execute("UPDATE permits SET done = ? WHERE id = ?", (now, permit))
        if everyone:
            for holder, host, pid, started in conn.execute(
                "SELECT id, host, pid, started FROM holders WHERE id != ? AND host = ?",
                (me, self._host),
            ).fetchall():
                if dead(holder, host, pid, started):
                    conn.execute(
                        "DELETE FROM holders WHERE id = ? "
                        "AND id NOT IN (SELECT holder FROM leases)",
                        (holder,),
                    )

    # -- figures ---------------------------------------------------------------------

    def outstanding(self) -> int:
        """`Store.outstanding`: Events this process put that are still in the
        store."""
        with self._lock:
            if self._me is None:
                return 0
            conn = self._connection()
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
        with self._lock:
            conn = self._connection()
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
    pause are then per account only, in `accounts`)."""
    conn.execute("BEGIN")  # one consistent snapshot
    try:
        rows, nbytes, reclaimed, dropped = conn.execute(
            "SELECT rows, bytes, reclaimed, dropped FROM state"
        ).fetchone()
        accounts = [
            _account_stats(conn, now, *row)
            for row in conn.execute(
                "SELECT id, site_uuid, rows, bytes, paused_until, budget_limit, "
                "budget_window FROM accounts WHERE rows > 0 OR paused_until > ? "
                "OR id IN (SELECT account FROM holders) ORDER BY site_uuid, id",
                (now,),
            ).fetchall()
        ]
        unassigned = conn.execute(
            "SELECT coalesce(sum(count), 0) FROM legacy_events"
        ).fetchone()[0]
        where: str
        args: tuple[Any, ...]
        if account is None:  # the whole file
            where, args = "", ()
            limit, window, paused = 0, 0.0, 0.0
        else:
            mine = conn.execute(
                "SELECT id, rows, bytes, paused_until, budget_limit, budget_window "
                "FROM accounts WHERE key = ?",
                (account.key,),
            ).fetchone()
            # An account that never wrote here has nothing in the file.
            acct, rows, nbytes, paused, limit, window = mine or (0, 0, 0, 0.0, 0, 0.0)
            where, args = " WHERE account = ?", (acct,)
        leased, leases = conn.execute(
            "SELECT coalesce(sum(count), 0), count(*) FROM leases" + where, args
        ).fetchone()
        oldest = conn.execute(
            "SELECT created FROM queue" + where + " ORDER BY id LIMIT 1", args
        ).fetchone()
        used = conn.execute(
            "SELECT count(*) FROM permits WHERE (done IS NULL OR done > ?)"
            + where.replace("WHERE", "AND"),
            (now - window, *args),
        ).fetchone()[0]
        processes = conn.execute("SELECT count(*) FROM holders").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.execute("COMMIT")
    max_bytes = DEFAULT_MAX_STORE_BYTES
    for store in list(_stores):
        if store.path == path:
            max_bytes = store.max_bytes
    return StoreStats(
        kind="sqlite",
        location=location,
        depth=rows,
        nbytes=nbytes,
        max_bytes=max_bytes,
        leased=leased,
        leases=leases,
        oldest_age=max(0.0, now - oldest[0]) if oldest else None,
        budget_used=used,
        budget_limit=limit,
        budget_window=window,
        paused_until=float(paused) if paused > now else None,
        reclaimed=reclaimed,
        dropped=dropped,
        processes=processes,
        schema_version=version,
        site_uuid=None if account is None else account.site_uuid,
        accounts=tuple(accounts),
        unassigned=unassigned,
    )


def _account_stats(
    conn: sqlite3.Connection,
    now: float,
    acct: int,
    site_uuid: str,
    rows: int,
    nbytes: int,
    paused: float,
    limit: int,
    window: float,
) -> AccountStats:
    oldest = conn.execute(
        "SELECT created FROM queue WHERE account = ? ORDER BY id LIMIT 1", (acct,)
    ).fetchone()
    used = conn.execute(
        "SELECT count(*) FROM permits WHERE account = ? AND (done IS NULL OR done > ?)",
        (acct, now - window),
    ).fetchone()[0]
    return AccountStats(
        site_uuid=site_uuid,
        depth=rows,
        nbytes=nbytes,
        oldest_age=max(0.0, now - oldest[0]) if oldest else None,
        budget_used=used,
        budget_limit=limit,
        budget_window=window,
        paused_until=float(paused) if paused > now else None,
    )


def adopt_legacy(conn: sqlite3.Connection, account: Account) -> int:
    """Move the events written before stores knew accounts (`legacy_events`)
    into `account`'s queue, to be sent with its keys; return how many. The
    operator's decision (`bento-track store URL --adopt`), never a guess."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT OR IGNORE INTO accounts (key, site_uuid) VALUES (?, ?)",
            (account.key, account.site_uuid),
        )
        acct = conn.execute(
            "SELECT id FROM accounts WHERE key = ?", (account.key,)
        ).fetchone()[0]
        count, nbytes = conn.execute(
            "SELECT coalesce(sum(count), 0), coalesce(sum(bytes), 0) FROM legacy_events"
        ).fetchone()
        conn.execute(
            "INSERT INTO queue (account, origin, created, count, bytes, data) "
            "SELECT ?, 0, created, count, bytes, data FROM legacy_events ORDER BY id",
            (acct,),
        )
        conn.execute("DELETE FROM legacy_events")
        conn.execute(
            "UPDATE accounts SET rows = rows + ?, bytes = bytes + ? WHERE id = ?",
            (count, nbytes, acct),
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return int(count)


def _identity(path: str) -> tuple[int, int] | None:
    """Which file `path` names now (device, inode), or None if none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _create_private(path: str) -> None:
    """Create a missing store file owner-only (0600, whatever the umask: it
    holds subscribers' emails). SQLite gives its `-wal` and `-shm` files the
    database file's mode."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # SQLite's own open says why (missing directory, read-only)
    os.close(fd)


def _explain(path: str, exc: Exception) -> str:
    """SQLite's message, with the likely cause when SQLite does not say it
    (it reports a read-only file system as "unable to open database file")."""
    where = os.path.dirname(os.path.abspath(path))
    cause = ""
    if not os.path.isdir(where):
        cause = f"the directory {where} does not exist"
    else:
        try:
            fs = os.statvfs(where)
        except OSError:
            fs = None
        if fs is not None and fs.f_flag & os.ST_RDONLY:
            cause = f"{where} is on a read-only file system"
        elif fs is not None and fs.f_bavail == 0:
            cause = f"the disk holding {where} is full"
        elif not os.access(where, os.W_OK):
            cause = f"no permission to write in {where}"
    return f"{exc} ({cause})" if cause and cause not in str(exc) else str(exc)


def _lock_all_before_fork() -> None:
    deadline = time.monotonic() + _FORK_LOCK_TIMEOUT
    held = []
    for store in list(_stores):
        if store._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            held.append(store)
    _held_at_fork.extend(held)


def _unlock_all_in_parent() -> None:
    while _held_at_fork:
        _held_at_fork.pop()._lock.release()


def _renew_all_in_child() -> None:
    _held_at_fork.clear()
    for store in list(_stores):
        store._forget_parent()


_held_at_fork: list[SQLiteStore] = []

if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_lock_all_before_fork,
        after_in_parent=_unlock_all_in_parent,
        after_in_child=_renew_all_in_child,
    )
