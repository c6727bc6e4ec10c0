"""The rows of a SQLite store's queue: chunks written, taken under a lease,
put back and deleted, with the totals kept in step (the file's in `state`,
each account's in `accounts`, each lease's in `leases`, each process's
events still in the store in `holders.outstanding`).

Each function runs inside the caller's transaction (`SQLiteStore`), on one
account's rows: another account's events are never taken, trimmed or
counted for this one.
"""

from __future__ import annotations

import sqlite3
from collections import Counter

from .._core.kinds import KINDS, kind_of
from .._core.records import Record
from .base import Lease
from .chunks import size_of

__all__ = [
    "delete",
    "give_back_disk",
    "insert",
    "one_row_each",
    "put_back",
    "take",
    "trim_oldest",
]

#: free pages (4 KiB each) worth returning to the disk when the store empties
_VACUUM_PAGES = 256


def _count(conn: sqlite3.Connection, account: int, rows: int, nbytes: int) -> None:
    """Add to the file's and the account's totals (negative: remove)."""
    conn.execute("UPDATE state SET rows = rows + ?, bytes = bytes + ?", (rows, nbytes))
    conn.execute(
        "UPDATE accounts SET rows = rows + ?, bytes = bytes + ? WHERE id = ?",
        (rows, nbytes, account),
    )


def _settle_origins(conn: sqlite3.Connection, origins: Counter[int]) -> None:
    conn.executemany(
        "UPDATE holders SET outstanding = outstanding - ? WHERE id = ?",
        [(n, origin) for origin, n in origins.items()],
    )


def insert(
    conn: sqlite3.Connection,
    account: int,
    origin: int,
    now: float,
    chunks: list[list[Record]],
) -> int:
    """Write `chunks` (one row each) as `origin`'s, waiting; return their
    bytes (sum of `record_size`)."""
    rows = [(account, origin, now, len(c), size_of(c), b"\n".join(c)) for c in chunks]
    conn.executemany(
        "INSERT INTO queue (account, origin, created, count, bytes, data) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    added = sum(row[4] for row in rows)
    events = sum(row[3] for row in rows)
    _count(conn, account, events, added)
    conn.execute(
        "UPDATE holders SET outstanding = outstanding + ? WHERE id = ?",
        (events, origin),
    )
    return added


def trim_oldest(conn: sqlite3.Connection, account: int, excess: int) -> list[Record]:
    """Delete the account's oldest waiting chunks until `excess` bytes are
    gone (or none of its own is left); return their records."""
    out: list[Record] = []
    origins: Counter[int] = Counter()
    freed = 0
    last = 0
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
        _count(conn, account, -len(out), -freed)
        _settle_origins(conn, origins)
    return out


def take(
    conn: sqlite3.Connection,
    account: int,
    holder: int,
    expires: float,
    max_count: int,
    max_bytes: int,
) -> Lease | None:
    """A lease for `holder` (until `expires`) on the account's oldest waiting
    chunks: whole chunks of one kind of record, at most `max_count` events
    (fewer for a kind with a lower limit) and `max_bytes`, at least one
    chunk. None when nothing waits."""
    ids: list[int] = []
    origins: list[int] = []
    records: list[Record] = []
    size = 0
    last = 0
    full = False
    limit = max_count
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
                or size + nbytes > max_bytes
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
        (account, holder, expires, len(records), size),
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


def one_row_each(
    conn: sqlite3.Connection, account: int, lease: Lease, now: float
) -> Lease:
    """`lease` with its chunks rewritten as one row per event (still
    leased), so halves of a bisection can be settled apart."""
    conn.execute(
        "DELETE FROM queue WHERE lease = ? AND id BETWEEN ? AND ?",
        (lease.token, lease.ids[0], lease.ids[-1]),
    )
    ids = []
    for record, origin in zip(lease.records, lease.origins, strict=True):
        cursor = conn.execute(
            "INSERT INTO queue (account, lease, origin, created, count, bytes, data) "
            "VALUES (?, ?, ?, ?, 1, ?, ?)",
            (account, lease.token, origin, now, len(record) + 1, record),
        )
        assert cursor.lastrowid is not None
        ids.append(cursor.lastrowid)
    return Lease(lease.token, lease.records, ids, lease.origins, lease.permit)


def delete(conn: sqlite3.Connection, account: int, lease: Lease) -> None:
    """Delete `lease`'s rows (settled)."""
    gone = conn.execute(
        "DELETE FROM queue WHERE lease = ? AND id BETWEEN ? AND ?",
        (lease.token, lease.ids[0], lease.ids[-1]),
    ).rowcount
    if gone == len(set(lease.ids)):
        size = size_of(lease.records)
        _settle_origins(conn, Counter(lease.origins))
        _count(conn, account, -len(lease.records), -size)
        _shrink_lease(conn, lease.token, len(lease.records), size)
    elif gone:  # pragma: no cover - a lease taken over in part
        _recount(conn)


def put_back(conn: sqlite3.Connection, lease: Lease) -> None:
    """`lease`'s rows wait again, in their order (released)."""
    back = conn.execute(
        "UPDATE queue SET lease = 0 WHERE lease = ? AND id BETWEEN ? AND ?",
        (lease.token, lease.ids[0], lease.ids[-1]),
    ).rowcount
    if back:
        _shrink_lease(conn, lease.token, len(lease.records), size_of(lease.records))


def _shrink_lease(conn: sqlite3.Connection, token: int, count: int, size: int) -> None:
    conn.execute(
        "UPDATE leases SET count = count - ?, bytes = bytes - ? WHERE id = ?",
        (count, size, token),
    )
    conn.execute("DELETE FROM leases WHERE id = ? AND count <= 0", (token,))


def _recount(conn: sqlite3.Connection) -> None:
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


def give_back_disk(conn: sqlite3.Connection) -> None:
    """Once a backlog is delivered, return its pages to the disk (the file
    would otherwise keep its peak size, reused but never freed). Outside a
    transaction."""
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if free >= _VACUUM_PAGES:
        # sqlite3_exec steps the pragma to its end (one step frees one page).
        conn.executescript("PRAGMA incremental_vacuum;")
