"""The processes that use a SQLite store (`holders`): each is registered on
its first write, by host, pid and start time (`procs`), and how many of the
events it put are still in the store is kept for its `flush()`.

The reaper: a lease whose holder died is taken over at the next claim of
any process: at once when the holder was on this host (its pid is gone, or
runs another program: the start time differs), else when the lease
expires. Its events may then be sent twice (if Bento had accepted them just
before the crash): they are counted as `reclaimed`. A request a dead
process had in flight is counted as ended, so it frees its place in the
budget.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from .account import Account
from .procs import is_alive, start_time

__all__ = ["reap", "register"]


def register(
    conn: sqlite3.Connection, account: Account, host: str, now: float
) -> tuple[int, int]:
    """Register this process as a holder of `account`'s events (the account
    too, on its first use of the file), in the caller's transaction:
    (holder id, account id)."""
    conn.execute(
        "INSERT OR IGNORE INTO accounts (key, site_uuid) VALUES (?, ?)",
        (account.key, account.site_uuid),
    )
    acct = int(
        conn.execute(
            "SELECT id FROM accounts WHERE key = ?", (account.key,)
        ).fetchone()[0]
    )
    pid = os.getpid()
    cursor = conn.execute(
        "INSERT INTO holders (account, host, pid, started, opened) "
        "VALUES (?, ?, ?, ?, ?)",
        (acct, host, pid, start_time(pid), now),
    )
    me = cursor.lastrowid
    assert me is not None
    return me, acct


def reap(
    conn: sqlite3.Connection,
    me: int | None,
    host: str,
    now: float,
    lease_timeout: float,
    everyone: bool = False,
) -> None:
    """Take over leases (and close permits in flight) of processes that
    died, in the transaction open on `conn`: on this `host` at once,
    elsewhere when a lease expires (a permit after `lease_timeout`). `me` is
    the caller's holder id. With `everyone`, also forget dead processes of
    this host that hold nothing."""
    alive: dict[int, bool] = {}

    def dead(
        holder: int, their_host: str | None, pid: int | None, started: Any
    ) -> bool:
        if holder not in alive:
            if their_host is None or pid is None:
                alive[holder] = False  # its process row is gone
            elif their_host != host:
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
    for token, holder, expires, count, their_host, pid, started in leases:
        if expires < now or dead(holder, their_host, pid, started):
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
    for permit, holder, began, their_host, pid, started in flying:
        # A dead process's request, if it ever arrived, arrived by now.
        if began < now - lease_timeout or dead(holder, their_host, pid, started):
            conn.execute("UPDATE permits SET done = ? WHERE id = ?", (now, permit))
    if everyone:
        for holder, their_host, pid, started in conn.execute(
            "SELECT id, host, pid, started FROM holders WHERE id != ? AND host = ?",
            (me, host),
        ).fetchall():
            if dead(holder, their_host, pid, started):
                conn.execute(
                    "DELETE FROM holders WHERE id = ? "
                    "AND id NOT IN (SELECT holder FROM leases)",
                    (holder,),
                )
