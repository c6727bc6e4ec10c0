"""A SQLite store's figures, and the hand-over of its unassigned events:
what `stats()` and `bento-track store URL` read (never writing), and what
`bento-track store URL --adopt` writes.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .account import Account
from .base import AccountStats, StoreStats

__all__ = ["adopt_legacy", "read_figures"]


def read_figures(
    conn: sqlite3.Connection,
    now: float,
    location: str,
    max_bytes: int,
    account: Account | None = None,
) -> StoreStats:
    """The figures of the store behind `conn` (its bound: `max_bytes`), in
    one read transaction: of `account`'s partition, or with None of the
    whole file (budget and pause are then per account only, in
    `accounts`)."""
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
