"""A SQLite store's request budget: each account's sliding-window log of
requests in the `permits` table (when each started, when it ended: NULL
while in flight), read by `_core.budget.log_delay`, and its 429 pause
in `accounts.paused_until`. Times are wall-clock seconds: monotonic clocks
are not comparable across processes.

Each function runs inside the caller's transaction (`SQLiteStore`).
"""

from __future__ import annotations

import sqlite3

from .._core.budget import log_delay
from .base import Permit

__all__ = ["grant", "paused_until", "wait"]

#: seconds to wait before asking again when only requests in flight (their
#: end unknown) fill the budget
_IN_FLIGHT_POLL = 0.05


def wait(
    conn: sqlite3.Connection, account: int, now: float, limit: int, window: float
) -> float:
    """Seconds until the account's budget (`limit` requests a `window`)
    allows one more request (0.0: now)."""
    stored_window = conn.execute("SELECT max(budget_window) FROM accounts").fetchone()[
        0
    ]
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


def grant(
    conn: sqlite3.Connection,
    account: int,
    holder: int,
    now: float,
    limit: int,
    window: float,
) -> Permit:
    """A permit for `holder`'s request starting `now`, in flight until it
    ends; the account's budget settings noted for operators."""
    cursor = conn.execute(
        "INSERT INTO permits (account, holder, started) VALUES (?, ?, ?)",
        (account, holder, now),
    )
    conn.execute(
        "UPDATE accounts SET budget_limit = ?, budget_window = ? WHERE id = ?",
        (limit, window, account),
    )
    permit = cursor.lastrowid
    assert permit is not None
    return permit


def paused_until(conn: sqlite3.Connection, account: int) -> float:
    """The account's pause (epoch seconds; 0 or past: none)."""
    row = conn.execute(
        "SELECT paused_until FROM accounts WHERE id = ?", (account,)
    ).fetchone()
    return float(row[0]) if row else 0.0
