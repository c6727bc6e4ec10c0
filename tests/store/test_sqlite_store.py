"""The SQLite store on its own: what only a file does (a lease of another
host, schema versions, the file's disk, mode and errors, URLs). What every
store does (queue, bound, budget, pause, reclaim, bisection, accounts) is
in `tests/store_contract`. Each `SQLiteStore` object is one process as the
store sees it (its own holder row); time is a FakeClock."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing  # a connection's own `with` commits, never closes
from dataclasses import replace
from pathlib import Path

import pytest

import bento_track
from bento_track.errors import ConfigurationError
from bento_track.stores import Account, SQLiteStore, StoreError
from bento_track.stores.sqlite import SCHEMA_V1, SCHEMA_VERSION, adopt_legacy
from bento_track.stores.sqlite_conn import transaction
from bento_track.stores.sqlite_schema import check_ours, migrate
from bento_track.stores.url import open_store, sqlite_path

from ..support.stores import POLICY, SQLiteStores, recs

ALPHA = Account("https://app.bentonow.com/api/v1", "site-alpha", "pk-alpha")


def test_lease_elsewhere_is_taken_over_when_it_expires(stores: SQLiteStores) -> None:
    a = stores.open(lease_timeout=60.0)
    b = stores.peer(a)
    a.put(recs(*range(10)))
    lease = a.claim(force=False).lease
    assert lease is not None
    with closing(sqlite3.connect(a.path)) as conn, conn:  # a lives on another host
        conn.execute("UPDATE holders SET host = 'elsewhere' WHERE id = ?", (a._me,))
    assert b.claim(force=True).lease is None
    stores.advance(59.0)
    a.renew(lease)  # a is alive and says so
    stores.advance(59.0)
    assert b.claim(force=True).lease is None
    stores.advance(2.0)
    assert b.claim(force=True).lease is not None


def test_an_older_schema_is_migrated_and_its_events_wait_for_an_owner(
    tmp_path,
) -> None:
    path = tmp_path / "v1.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(SCHEMA_V1)
        conn.execute(
            "INSERT INTO events (created, data) VALUES (1.0, ?)", (recs(7)[0],)
        )
        conn.execute("UPDATE state SET rows = 1, bytes = ?", (len(recs(7)[0]) + 1,))
    store = SQLiteStore(str(path))
    store.open()
    store.configure(replace(POLICY, account=ALPHA), bento_track._core.clock.FakeClock())
    stats = store.stats()
    assert stats.schema_version == SCHEMA_VERSION == 3
    assert (stats.unassigned, stats.depth) == (1, 0)
    # Whose it was is unknown: it is never sent with a guessed account.
    assert store.claim(force=True).lease is None
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert adopt_legacy(conn, ALPHA) == 1
    assert store.stats().unassigned == 0
    lease = store.claim(force=True).lease
    assert lease is not None and lease.records == recs(7)
    store.ack(lease)
    assert store.stats().depth == 0
    store.close()


def test_a_newer_schema_or_a_foreign_file_is_a_clear_error(tmp_path) -> None:
    newer = tmp_path / "newer.db"
    with closing(sqlite3.connect(newer)) as conn, conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(ConfigurationError, match="newer bento_track") as info:
        open_store(f"sqlite:///{newer}", max_bytes=2**20)
    assert info.value.setting == "store"
    foreign = tmp_path / "app.db"
    with closing(sqlite3.connect(foreign)) as conn, conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    before = foreign.read_bytes()
    with pytest.raises(ConfigurationError, match="not a bento_track store"):
        open_store(f"sqlite:///{foreign}", max_bytes=2**20)
    # Refused untouched: still in its own journal mode, no WAL beside it.
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "newer.db"]
    with closing(sqlite3.connect(foreign)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_unwritable_places_fail_at_start_with_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="cannot use sqlite:///"):
        bento_track.Client(
            site_uuid="s",
            publishable_key="p",
            secret_key="k",
            store=f"sqlite:///{tmp_path}/missing/dir/bento.db",
        )
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="store"):
        open_store(f"sqlite:///{tmp_path}/file/bento.db", max_bytes=2**20)


def test_a_new_file_created_by_another_process_mid_check_is_ours(tmp_path) -> None:
    """Processes started together on a new file: one creates the schema
    while another checks the file. The check reads one snapshot, so it never
    sees tables without their schema version ("other tables")."""
    path = tmp_path / "new.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as setup:
        setup.execute("PRAGMA journal_mode = WAL")  # readers keep their snapshot
    with (
        closing(sqlite3.connect(path, isolation_level=None)) as checking,
        closing(sqlite3.connect(path, isolation_level=None)) as creating,
    ):

        def create_schema_between_the_reads(statement: str) -> None:
            if "sqlite_master" in statement and not created:
                created.append(True)
                with transaction(creating):
                    migrate(creating)

        created: list[bool] = []
        checking.set_trace_callback(create_schema_between_the_reads)
        check_ours(checking)  # raised "other tables" when read twice apart
        assert created  # the other process did create it mid-check
        checking.set_trace_callback(None)
        check_ours(checking)  # and it is ours once created


UNWRITABLE = """
import sys
from bento_track.stores.url import open_store
from bento_track.errors import ConfigurationError
try:
    open_store('sqlite:///' + sys.argv[1], max_bytes=2**20)
except ConfigurationError as exc:
    print(exc)
    sys.exit(3)
"""


def _in_mount_namespace(mount: str, script: str, path: Path) -> str:
    """Run `script` with `mount` (a shell command) done in a private mount
    namespace: a real read-only or full file system, as root only."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private mount")
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f'{mount} && exec "$0" -c "$1" "$2"',
            sys.executable,
            script,
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(bento_track.__file__).parents[1])},
    )
    assert done.returncode == 3, (done.stdout, done.stderr)
    return done.stdout


def test_a_read_only_file_system_fails_at_start(tmp_path) -> None:
    where = tmp_path / "ro"
    where.mkdir()
    open_store(f"sqlite:///{where}/bento.db", max_bytes=2**20).close()
    said = _in_mount_namespace(
        f"mount --bind -o ro {where} {where}", UNWRITABLE, where / "bento.db"
    )
    assert "cannot use sqlite:///" in said and "read-only file system" in said


def test_a_full_disk_fails_at_start(tmp_path) -> None:
    where = tmp_path / "full"
    where.mkdir()
    said = _in_mount_namespace(
        f"mount -t tmpfs -o size=4k tmpfs {where}", UNWRITABLE, where / "bento.db"
    )
    assert "cannot use sqlite:///" in said and "full" in said


def test_store_urls() -> None:
    assert sqlite_path("sqlite:////var/lib/app/bento.db") == (
        "/var/lib/app/bento.db",
        {},
    )
    assert sqlite_path("sqlite:///bento.db?lease_timeout=30") == (
        "bento.db",
        {"lease_timeout": "30"},
    )
    for bad in (
        "sqlite://bento.db",
        "postgres:///x",
        "sqlite:///",
        "sqlite:///:memory:",
    ):
        with pytest.raises(ConfigurationError) as info:
            open_store(bad, max_bytes=2**20)
        assert info.value.setting == "store"
    with pytest.raises(ConfigurationError, match="lease_timeout"):
        open_store("sqlite:///x.db?lease_timeout=0", max_bytes=2**20)
    # A Redis URL opens a Redis store (no I/O until used; issue 13).
    redis_store = open_store("redis://localhost/0", max_bytes=2**20)
    assert type(redis_store).__name__ == "RedisStore"
    redis_store.close()


def test_client_options_and_the_environment(tmp_path, monkeypatch) -> None:
    creds = dict(
        site_uuid="s",
        publishable_key="p",
        secret_key="k",
        base_url="http://127.0.0.1:9/api/v1",
    )
    path = tmp_path / "env.db"
    client = bento_track.Client(
        **creds, environ={"BENTO_STORE": f"sqlite:///{path}"}, flush_interval=60.0
    )
    try:
        assert client.stats().store.kind == "sqlite" and path.exists()
    finally:
        client.shutdown(0.5)
    memory = bento_track.Client(**creds, environ={"BENTO_STORE": "memory"})
    assert memory.stats().store.kind == "memory"
    memory.shutdown(0.1)
    with pytest.raises(ConfigurationError, match="queue="):
        bento_track.Client(
            **creds, store=f"sqlite:///{path}", queue=bento_track.stores.MemoryQueue()
        )
    with pytest.raises(ConfigurationError, match="max_store_bytes"):
        bento_track.Client(**creds, max_store_bytes=10)


def test_a_delivered_backlog_gives_its_disk_back(stores: SQLiteStores) -> None:
    policy = replace(
        POLICY, max_count=1000, max_bytes=1_000_000, requests_per_window=1000
    )
    store = stores.open(policy)
    record = b'{"type":"a","email":"u@example.com","details":{"pad":"%s"}}' % (
        b"x" * 250
    )
    for _ in range(20):
        store.put([record] * 1000)
    size = os.path.getsize(store.path) + os.path.getsize(store.path + "-wal")
    stored = store.stats().nbytes
    assert stored == 20_000 * (len(record) + 1)
    assert size < stored * 1.6  # the file's overhead over the events it holds
    batches = 0
    while (lease := store.claim(force=True).lease) is not None:
        assert len(lease) == 1000  # chunks of 100 fill batches exactly here
        store.complete(lease.permit)
        store.ack(lease)
        batches += 1
    assert batches == 20 and store.stats().depth == 0
    with closing(sqlite3.connect(store.path)) as conn, conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert os.path.getsize(store.path) < stored / 10


def test_a_deleted_file_is_noticed_counted_and_recreated(
    stores: SQLiteStores, tmp_path
) -> None:
    store = stores.open()
    store.put(recs(*range(5)))
    assert store.outstanding() == 5
    (tmp_path / "s.db").unlink()
    with pytest.raises(StoreError, match="deleted or replaced"):
        store.put(recs(5))
    assert store.lost() == 5
    assert store.put(recs(6)) == []  # a new file, created owner-only
    assert (store.outstanding(), store.kept()) == (1, 1)
    assert (tmp_path / "s.db").stat().st_mode & 0o777 == 0o600


def test_store_files_are_owner_only_whatever_the_umask(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        store = SQLiteStore(str(tmp_path / "private.db"))
        store.open()
        store.configure(POLICY, bento_track._core.clock.FakeClock())
        store.put(recs(1))
        modes = {
            p.name: p.stat().st_mode & 0o777
            for p in tmp_path.iterdir()
            if p.name.startswith("private.db")
        }
        store.close()
    finally:
        os.umask(old)
    assert set(modes) >= {"private.db", "private.db-wal", "private.db-shm"}
    assert set(modes.values()) == {0o600}, modes


def test_an_unknown_store_url_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigurationError, match="store must be") as info:
        open_store("postgres://user:hunter2@db/app", max_bytes=2**20)
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def _open_fds_on(path: Path) -> int:
    """How many of this process's file descriptors name `path` (or its WAL)."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (listdir's own descriptor)
        found += target.startswith(str(path))
    return found


def test_figures_read_after_shutdown_leave_no_file_open(tmp_path, emulator) -> None:
    """`stats()` after `shutdown()` reads the file, and closes it again:
    nothing else would (Python 3.13 warns of such a connection when it is
    collected)."""
    path = tmp_path / "bento.db"
    client = bento_track.Client(store=f"sqlite:///{path}", **emulator.client_kwargs())
    client.track("a", email="u@example.com")
    assert client.flush(30)
    assert client.shutdown() == 0
    assert _open_fds_on(path) == 0
    stats = client.stats()
    assert (stats.sent, stats.store.depth) == (1, 0)  # read from the file
    assert _open_fds_on(path) == 0
