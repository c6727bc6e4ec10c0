"""The SQLite store's schema, its migrations, and the check that a file is
ours before anything is written to it.

A new file is created at version 1 and brought up through every migration,
so new and upgraded files go through one path.

Version 3 partitions the store by account (`queues.account`): events wait in
`queue` with their account, and `accounts` holds each account's totals, 429
pause, last send and budget settings; `leases`, `permits` and `holders` name
their account. Events written by an earlier version carry no account, and
sending them with a guessed one could deliver one customer's events to
another's account: the migration moves them to `legacy_events`, which
nothing sends, until an operator adopts them into an account
(`bento-track store URL --adopt`). The table is renamed rather than altered
so that a process of the old version still running on the file fails on
every write or claim (no table `events`) instead of sending any account's
events with its keys.
"""

from __future__ import annotations

import sqlite3

__all__ = ["MIGRATIONS", "SCHEMA_V1", "SCHEMA_VERSION", "check_ours", "migrate"]

SCHEMA_VERSION = 3

# Version 1 (the first stores) kept one row per event and had no per-process
# accounting: chunks (`events.count`, `events.bytes`), `events.origin`,
# `holders.outstanding` and the `reclaimed`/`dropped` counters came in 2.
SCHEMA_V1 = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    lease INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX events_by_lease ON events (lease, id);
CREATE TABLE leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    holder INTEGER NOT NULL,
    expires REAL NOT NULL,
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TABLE holders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started INTEGER,
    opened REAL NOT NULL
);
CREATE TABLE permits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    holder INTEGER NOT NULL,
    started REAL NOT NULL,
    done REAL
);
CREATE TABLE state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    paused_until REAL NOT NULL,
    last_sent REAL NOT NULL,
    budget_limit INTEGER NOT NULL,
    budget_window REAL NOT NULL
);
INSERT INTO state VALUES (1, 0, 0, 0, 0, 0, 0);
PRAGMA user_version = 1;
"""

#: version -> the statements that bring a store from it to the next version
MIGRATIONS: dict[int, str] = {
    1: """
ALTER TABLE events ADD COLUMN origin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE events SET bytes = length(data) + 1, lease = 0;
DELETE FROM leases;
ALTER TABLE holders ADD COLUMN outstanding INTEGER NOT NULL DEFAULT 0;
ALTER TABLE state ADD COLUMN reclaimed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE state ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 2;
""",
    # `state` keeps the file's totals (the bound is the file's) and its
    # counters; its pause and budget columns are read no more.
    2: """
ALTER TABLE events RENAME TO legacy_events;
UPDATE legacy_events SET lease = 0;
DELETE FROM leases;
UPDATE holders SET outstanding = 0;
CREATE TABLE queue (
    id INTEGER PRIMARY KEY,
    account INTEGER NOT NULL,
    lease INTEGER NOT NULL DEFAULT 0,
    origin INTEGER NOT NULL,
    created REAL NOT NULL,
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX queue_by_account ON queue (account, lease, id);
CREATE INDEX queue_by_lease ON queue (lease, id);
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    site_uuid TEXT NOT NULL,
    rows INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    paused_until REAL NOT NULL DEFAULT 0,
    last_sent REAL NOT NULL DEFAULT 0,
    budget_limit INTEGER NOT NULL DEFAULT 0,
    budget_window REAL NOT NULL DEFAULT 0
);
ALTER TABLE leases ADD COLUMN account INTEGER NOT NULL DEFAULT 0;
ALTER TABLE permits ADD COLUMN account INTEGER NOT NULL DEFAULT 0;
ALTER TABLE holders ADD COLUMN account INTEGER NOT NULL DEFAULT 0;
CREATE INDEX permits_by_account ON permits (account, done);
PRAGMA user_version = 3;
""",
}

#: the tables every version of a store file holds
_OURS = {
    "events",
    "legacy_events",
    "queue",
    "accounts",
    "leases",
    "holders",
    "permits",
    "state",
}


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def check_ours(conn: sqlite3.Connection) -> None:
    """Refuse a file that is not a bento_track store, before anything (even
    the journal mode) is changed in it. Only reads.

    Raises:
        sqlite3.DatabaseError: another program's database (or not a
            database at all), or one written by a newer bento_track.
    """
    # Both reads in one read transaction: another process creating the
    # schema between them would otherwise show tables without a version.
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%'"
            )
        }
    finally:
        if own:
            conn.execute("COMMIT")
    if version == 0 and tables:
        raise sqlite3.DatabaseError("not a bento_track store (it holds other tables)")
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"written by a newer bento_track (schema version {version}; "
            f"this one reads up to {SCHEMA_VERSION})"
        )
    if version and not ({"holders", "state"} <= tables <= _OURS):
        raise sqlite3.DatabaseError(
            f"not a bento_track store (schema version {version} with tables "
            f"{', '.join(sorted(tables)) or 'none'})"
        )


def migrate(conn: sqlite3.Connection) -> None:
    """Create the schema in a new file, or bring an older one up to
    `SCHEMA_VERSION`, in one transaction (the caller opened it)."""
    check_ours(conn)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        for statement in _statements(SCHEMA_V1):
            conn.execute(statement)
        version = 1
    while version < SCHEMA_VERSION:
        for statement in _statements(MIGRATIONS[version]):
            conn.execute(statement)
        version += 1
