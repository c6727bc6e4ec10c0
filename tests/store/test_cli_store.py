"""`bento-track store URL`: an operator's view of a store, read-only."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing

from bento_track.cli import main
from bento_track.stores import SQLiteStore
from bento_track.stores.sqlite import SCHEMA_V1


def test_store_command_shows_depth_age_leases_and_budget(stores, capsys) -> None:
    store = stores.open()
    other = stores.peer(store)
    store.put([b'{"seq":%d}' % i for i in range(25)])
    lease = other.claim(force=False).lease  # held by "another process"
    assert lease is not None
    url = f"sqlite:///{store.path}"
    assert main(["store", url]) == 0
    out = capsys.readouterr().out
    assert "events     25 (oldest" in out
    assert "leases     1 holding 10 events" in out
    assert f"by pid {os.getpid()}" in out
    assert "budget     1 of 3 requests in the current 10 s window; not paused" in out
    assert main(["store", url, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["depth"] == 25 and info["leased"] == 10 and info["budget_used"] == 1
    assert info["schema_version"] == 3 and len(info["lease_list"]) == 1
    [account] = info["accounts"]
    assert account["depth"] == 25 and account["budget_used"] == 1


def test_store_command_on_a_closed_store_and_on_nothing(tmp_path, capsys) -> None:
    from bento_track.stores.url import open_store

    path = tmp_path / "closed.db"
    open_store(f"sqlite:///{path}", max_bytes=2**20).close()
    before = path.read_bytes()
    assert main(["store", f"sqlite:///{path}"]) == 0
    assert "events     0 (none waiting)" in capsys.readouterr().out
    # Read-only: SQLite may add its WAL index files, the store is untouched.
    assert path.read_bytes() == before
    assert main(["store", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert "no store at" in capsys.readouterr().err
    assert main(["store", "memory"]) == 2


def test_store_command_shows_unassigned_events_and_adopts_them(
    tmp_path, capsys, monkeypatch
) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn, conn:  # a file of schema 1
        conn.executescript(SCHEMA_V1)
        conn.executemany(
            "INSERT INTO events (created, data) VALUES (1.0, ?)",
            [(b'{"seq":%d}' % i,) for i in range(3)],
        )
        conn.execute("UPDATE state SET rows = 3, bytes = 30")
    url = f"sqlite:///{path}"
    store = SQLiteStore(str(path))
    store.open()  # migrated by a new process
    store.close()
    assert main(["store", url]) == 0
    assert "unassigned 3 events written before stores knew accounts" in (
        capsys.readouterr().out
    )
    for name, value in (
        ("SITE_UUID", "site-x"),
        ("PUBLISHABLE_KEY", "pk-x"),
        ("SECRET_KEY", "sk-x"),
    ):
        monkeypatch.setenv(f"BENTO_{name}", value)
    assert main(["store", url, "--adopt"]) == 0
    assert "adopted 3 unassigned events into the account of site site-x" in (
        capsys.readouterr().out
    )
    assert main(["store", url, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["unassigned"] == 0
    assert [(a["site_uuid"], a["depth"]) for a in info["accounts"]] == [("site-x", 3)]
    assert "pk-x" not in json.dumps(info) and "sk-x" not in json.dumps(info)
