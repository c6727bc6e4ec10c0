"""One process's connection to a SQLite store file.

The file is created owner-only (it holds subscribers' emails), opened in
WAL mode with `synchronous=NORMAL` (every committed transaction survives a
process crash; a power cut may lose the last ones), checked to be ours
before anything is written, and migrated (`sqlite_schema`). Every change
is one `BEGIN IMMEDIATE` transaction (`transaction`).

A file deleted or replaced under a running process is noticed at the next
operation: the path no longer names the file the connection has open
(device and inode). The store counts its events in it as lost, an error is
logged, and the next connection creates a new file at the path.

Fork: a connection never crosses a fork. The child forgets the parent's
connection without closing it (SQLite's close would touch the parent's
locks) and opens its own on first use. A fork hook holds every file's lock
around `fork()`, so no thread of ours is inside SQLite when it happens.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .._internal import logger
from .sqlite_schema import check_ours, migrate

__all__ = ["BUSY_TIMEOUT", "StoreError", "StoreFile", "explain", "transaction"]

#: seconds SQLite waits for another process's transaction before failing
BUSY_TIMEOUT = 10.0
#: a thread waits this long for a file's lock around fork() before forking
#: anyway (it never deadlocks the host's fork)
_FORK_LOCK_TIMEOUT = 10.0

_files: weakref.WeakSet[StoreFile] = weakref.WeakSet()
# Connections inherited from a parent process: never closed nor collected in
# the child (closing would release or checkpoint what the parent holds).
_orphans: list[sqlite3.Connection] = []


class StoreError(Exception):
    """The store file cannot be opened or written (the message says why)."""


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One `BEGIN IMMEDIATE` transaction: committed, or rolled back on any
    exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class StoreFile:
    """A store file as one process uses it (see the module docstring). Its
    `lock` guards the connection; the store holds it around every use.

    Args:
        path: the file.
        on_replaced: called with the old connection when the path names
            another file (or none) now; returns how many of this process's
            events were in it (lost).
        on_fork: called in a forked child, after the file forgot the
            parent's connection (the store forgets what else is the parent's).
    """

    def __init__(
        self,
        path: str,
        on_replaced: Callable[[sqlite3.Connection], int],
        on_fork: Callable[[], None],
    ) -> None:
        self.path = path
        self._on_replaced = on_replaced
        self._on_fork = on_fork
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        #: (st_dev, st_ino) of the file the connection has open
        self._identity: tuple[int, int] | None = None
        _files.add(self)

    def connection(self) -> tuple[sqlite3.Connection, bool]:
        """The connection (under `lock`), and whether it was opened just now.

        Raises:
            StoreError: the file cannot be opened, created or migrated, or
                it was deleted or replaced (a new one is made next time).
        """
        conn = self._conn
        if conn is not None and self._identity != _identity(self.path):
            self._replaced(conn)
        if conn is not None:
            return conn, False
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
                raise StoreError(explain(self.path, exc)) from exc
            except sqlite3.Error as exc:
                raise StoreError(explain(self.path, exc)) from exc
        self._conn = conn
        return conn, True

    def _connect(self) -> sqlite3.Connection:
        _create_private(self.path)
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT,
            isolation_level=None,  # transactions are explicit
            check_same_thread=False,  # used under self.lock only
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
            with transaction(conn):
                migrate(conn)
            self._identity = _identity(self.path)
        except BaseException:
            conn.close()
            raise
        return conn

    def _replaced(self, conn: sqlite3.Connection) -> None:
        """The path no longer names the file `conn` has open: count this
        process's events in it as lost, say so, and let the next connection
        create a new file."""
        lost = self._on_replaced(conn)
        self._conn = None
        self._identity = None
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

    def detach(self) -> sqlite3.Connection | None:
        """The connection, no longer the file's (to close, or None)."""
        conn, self._conn = self._conn, None
        return conn

    def forget_parent(self) -> None:
        """In a forked child: forget the parent's connection (never closed
        here) and lock."""
        if self._conn is not None:
            _orphans.append(self._conn)
        self._conn = None
        self.lock = threading.RLock()


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


def explain(path: str, exc: Exception) -> str:
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
    for file in list(_files):
        if file.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            held.append(file)
    _held_at_fork.extend(held)


def _unlock_all_in_parent() -> None:
    while _held_at_fork:
        _held_at_fork.pop().lock.release()


def _renew_all_in_child() -> None:
    _held_at_fork.clear()
    for file in list(_files):
        file.forget_parent()
        file._on_fork()


_held_at_fork: list[StoreFile] = []

if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_lock_all_before_fork,
        after_in_parent=_unlock_all_in_parent,
        after_in_child=_renew_all_in_child,
    )
