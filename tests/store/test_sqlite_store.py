"""The SQLite store on its own: queue, leases, bound, budget, reclaim,
schema versions and errors. Each `SQLiteStore` object is one process as the
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
from bento_track.queues import SQLiteStore, StoreError
from bento_track.queues.procs import is_alive, start_time
from bento_track.queues.sqlite import SCHEMA_V1, SCHEMA_VERSION, adopt_legacy
from bento_track.queues.url import open_store, sqlite_path

from .conftest import ALPHA, BRAVO, POLICY


def recs(*seqs: int) -> list[bytes]:
    return [b'{"seq":%d}' % s for s in seqs]


def test_fifo_lease_ack_and_release(make_store) -> None:
    store = make_store()
    assert store.put(recs(*range(25))) == []
    assert store.outstanding() == 25
    claim = store.claim(force=False)  # 25 >= 10: a full batch is due now
    assert claim.lease is not None and claim.lease.records == recs(*range(10))
    assert claim.count == 25
    store.complete(claim.lease.permit)
    store.release(claim.lease)  # put back: the same events come first again
    again = store.claim(force=False).lease
    assert again is not None and again.records == recs(*range(10))
    store.complete(again.permit)
    store.ack(again)
    assert store.outstanding() == 15
    stats = store.stats()
    assert (stats.depth, stats.leased, stats.leases) == (15, 0, 0)
    assert stats.nbytes == sum(len(r) + 1 for r in recs(*range(10, 25)))


def test_a_partial_batch_waits_for_its_age_unless_forced(make_store) -> None:
    store = make_store()
    clock = make_store.clock
    store.put(recs(1, 2, 3))
    claim = store.claim(force=False)
    assert claim.lease is None and claim.delay == pytest.approx(5.0)
    assert claim.budget_bound is False
    clock.advance(5.0)
    lease = store.claim(force=False).lease
    assert lease is not None and len(lease) == 3
    store.complete(lease.permit)
    store.ack(lease)
    store.put(recs(4))
    assert store.claim(force=False).lease is None  # waits a new interval
    forced = store.claim(force=True).lease
    assert forced is not None and forced.records == recs(4)


def test_two_processes_lease_disjoint_batches(make_store) -> None:
    a, b = make_store(), make_store()
    a.put(recs(*range(20)))
    la, lb = a.claim(force=False).lease, b.claim(force=False).lease
    assert la is not None and lb is not None
    assert la.records == recs(*range(10)) and lb.records == recs(*range(10, 20))
    assert a.claim(force=True).lease is None  # nothing left unleased
    b.ack(la) if False else None  # a lease is settled by its holder only
    a.ack(la)
    b.ack(lb)
    # b delivered a's events: a's outstanding count says so (flush() reads it)
    assert a.outstanding() == 0 and a.stats().depth == 0


def test_halves_of_a_bisected_lease_settle_apart(make_store) -> None:
    store = make_store()
    store.put(recs(*range(10)))
    lease = store.claim(force=False).lease
    assert lease is not None
    first, second = lease.split()
    store.reject(first.split()[0])  # 2 events refused for good
    store.ack(first.split()[1])
    assert store.stats().leased == 5
    store.release(second)
    stats = store.stats()
    assert (stats.depth, stats.leased, stats.leases) == (5, 0, 0)
    assert store.claim(force=True).lease.records == recs(*range(5, 10))


def test_byte_bound_drop_newest_and_drop_oldest(make_store, tmp_path) -> None:
    size = len(recs(0)[0]) + 1  # 9 bytes each
    newest = make_store(max_bytes=size * 4)
    assert newest.put(recs(0, 1, 2)) == []
    assert newest.put(recs(3, 4, 5)) == recs(4, 5)
    assert newest.stats().depth == 4 and newest.stats().dropped == 2
    oldest = make_store(
        replace(POLICY, overflow="drop_oldest"),
        path=tmp_path / "o.db",
        max_bytes=size * 4,
    )
    oldest.put(recs(0, 1, 2))
    assert oldest.put(recs(3, 4, 5)) == recs(0, 1)
    lease = oldest.claim(force=True).lease
    assert lease is not None and lease.records == recs(2, 3, 4, 5)
    assert oldest.outstanding() == 4


def test_budget_is_one_sliding_window_for_every_process(make_store) -> None:
    a, b = make_store(), make_store()
    clock = make_store.clock
    a.put(recs(*range(100)))
    permits = []
    for store in (a, b, a):
        claim = store.claim(force=False)
        assert claim.lease is not None
        permits.append((store, claim.lease.permit))
    # three requests in flight: a fourth waits for one of them to end
    claim = b.claim(force=False)
    assert claim.lease is None and claim.budget_bound and claim.delay
    assert b.acquire()[0] is None
    for store, permit in permits:
        clock.advance(1.0)
        store.complete(permit)  # ended at 1, 2, 3 s
    claim = b.claim(force=False)
    assert claim.lease is None and claim.delay == pytest.approx(8.0, abs=0.01)
    clock.advance(8.01)
    permit, wait = b.acquire()
    assert permit is not None and wait == 0.0
    assert a.stats().budget_used == 3  # two ended within the window, one flying


def test_a_429_pauses_every_process(make_store) -> None:
    a, b = make_store(), make_store()
    b.put(recs(*range(10)))
    a.pause(30.0)
    claim = b.claim(force=False)
    assert claim.lease is None and claim.delay == pytest.approx(30.0)
    a.pause(1.0)  # never shortens
    assert b.acquire() == (None, pytest.approx(30.0))
    assert b.paused_until() is not None
    make_store.clock.advance(30.0)
    assert b.claim(force=False).lease is not None


def _dead_pid() -> tuple[int, int | None]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = start_time(child.pid)
    child.kill()
    child.wait()
    return child.pid, started


def test_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(
    make_store,
) -> None:
    a, b = make_store(), make_store()
    a.put(recs(*range(10)))
    lease = a.claim(force=False).lease
    assert lease is not None
    assert b.claim(force=True).lease is None
    pid, started = _dead_pid()
    assert not is_alive(pid, started) and is_alive(os.getpid(), start_time(os.getpid()))
    with closing(sqlite3.connect(a.path)) as conn, conn:  # a's process "dies"
        conn.execute(
            "UPDATE holders SET pid = ?, started = ? WHERE id = ?",
            (pid, started, a._me),
        )
    taken = b.claim(force=True)
    assert taken.lease is not None and taken.lease.records == lease.records
    assert b.stats().reclaimed == 10
    a.ack(lease)  # the dead holder's late ack no longer deletes b's lease
    assert b.stats().depth == 10
    b.complete(taken.lease.permit)
    b.ack(taken.lease)
    assert b.stats().depth == 0


def test_lease_elsewhere_is_taken_over_when_it_expires(make_store) -> None:
    a, b = make_store(lease_timeout=60.0), make_store(lease_timeout=60.0)
    a.put(recs(*range(10)))
    lease = a.claim(force=False).lease
    assert lease is not None
    with closing(sqlite3.connect(a.path)) as conn, conn:  # a lives on another host
        conn.execute("UPDATE holders SET host = 'elsewhere' WHERE id = ?", (a._me,))
    assert b.claim(force=True).lease is None
    make_store.clock.advance(59.0)
    a.renew(lease)  # a is alive and says so
    make_store.clock.advance(59.0)
    assert b.claim(force=True).lease is None
    make_store.clock.advance(2.0)
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
    store.configure(
        replace(POLICY, account=ALPHA), bento_track._delivery.clock.FakeClock()
    )
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


UNWRITABLE = """
import sys
from bento_track.queues.url import open_store
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
            **creds, store=f"sqlite:///{path}", queue=bento_track.queues.MemoryQueue()
        )
    with pytest.raises(ConfigurationError, match="max_store_bytes"):
        bento_track.Client(**creds, max_store_bytes=10)


def test_a_delivered_backlog_gives_its_disk_back(make_store) -> None:
    policy = replace(
        POLICY, max_count=1000, max_bytes=1_000_000, requests_per_window=1000
    )
    store = make_store(policy)
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


# -- accounts -----------------------------------------------------------------


def test_accounts_sharing_a_file_claim_only_their_own_events(make_store) -> None:
    alpha = make_store(replace(POLICY, account=ALPHA))
    bravo = make_store(replace(POLICY, account=BRAVO))
    # Interleaved writes: the accounts' chunks alternate in the file.
    for i in range(0, 40, 2):
        alpha.put([b'{"a":%d}' % i, b'{"a":%d}' % (i + 1)])
        bravo.put([b'{"b":%d}' % i, b'{"b":%d}' % (i + 1)])
    seen: dict[str, list[bytes]] = {"a": [], "b": []}
    for store, name in ((alpha, "a"), (bravo, "b")):
        while (lease := store.claim(force=True).lease) is not None:
            assert all(r.startswith(b'{"%s"' % name.encode()) for r in lease.records)
            seen[name] += lease.records
            store.complete(lease.permit)
            store.ack(lease)
            make_store.clock.advance(10.0)  # a fresh budget window
    assert seen["a"] == [b'{"a":%d}' % i for i in range(40)]
    assert seen["b"] == [b'{"b":%d}' % i for i in range(40)]
    assert (alpha.outstanding(), bravo.outstanding()) == (0, 0)


def test_each_account_has_its_own_budget_pause_and_figures(make_store) -> None:
    alpha = make_store(replace(POLICY, account=ALPHA))
    alpha_too = make_store(replace(POLICY, account=ALPHA))  # another process
    bravo = make_store(replace(POLICY, account=BRAVO))
    alpha.put(recs(*range(50)))
    bravo.put(recs(*range(50)))
    for _ in range(3):  # alpha spends its whole budget (3 per window)
        lease = alpha.claim(force=True).lease
        assert lease is not None
        alpha.complete(lease.permit)
        alpha.ack(lease)
    blocked = alpha_too.claim(force=True)
    assert blocked.lease is None and blocked.budget_bound  # shared by its processes
    lease = bravo.claim(force=True).lease  # bravo's budget is its own
    assert lease is not None
    bravo.complete(lease.permit)
    bravo.release(lease)
    bravo.pause(30.0)  # a 429 of bravo's account pauses only bravo
    assert bravo.paused_until() is not None and alpha.paused_until() is None
    assert bravo.acquire()[0] is None
    a, b = alpha.stats(), bravo.stats()
    assert (a.site_uuid, a.depth, a.budget_used) == ("site-alpha", 20, 3)
    assert (b.site_uuid, b.depth, b.budget_used) == ("site-bravo", 50, 1)
    assert b.paused_until is not None and a.paused_until is None
    assert {s.site_uuid: s.depth for s in a.accounts} == {
        "site-alpha": 20,
        "site-bravo": 50,
    }


def test_drop_oldest_drops_only_the_accounts_own_events(make_store, tmp_path) -> None:
    policy = replace(POLICY, overflow="drop_oldest")
    alpha = make_store(replace(policy, account=ALPHA), max_bytes=400)
    bravo = make_store(replace(policy, account=BRAVO), max_bytes=400)
    bravo.put(recs(*range(20)))  # about 220 bytes
    dropped = alpha.put(recs(*range(100, 130)))  # alpha overflows the file
    assert dropped and all(r.startswith(b'{"seq":1') for r in dropped)
    assert bravo.stats().depth == 20


def test_a_deleted_file_is_noticed_counted_and_recreated(make_store, tmp_path) -> None:
    store = make_store()
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
        store.configure(POLICY, bento_track._delivery.clock.FakeClock())
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


def test_a_batch_takes_one_kind_of_record_in_queue_order(make_store) -> None:
    store = make_store(replace(POLICY, max_count=100))
    upsert = b'S{"email":"a@example.com"}'
    command = b'C{"command":"unsubscribe","email":"a@example.com"}'
    store.put(recs(1, 2) + [upsert] * 3 + [command] * 2 + recs(3))
    batches = []
    while (lease := store.claim(force=True).lease) is not None:
        batches.append(lease.records)
        store.complete(lease.permit)
        store.ack(lease)
        make_store.clock.advance(10.0)
    assert batches == [recs(1, 2), [upsert] * 3, [command] * 2, recs(3)]


def test_an_unknown_store_url_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigurationError, match="store must be") as info:
        open_store("postgres://user:hunter2@db/app", max_bytes=2**20)
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
