"""The worker on a SQLite store, in this process, against the emulator:
bisection over chunked rows, a 429 that pauses every process of the store,
and a disk that fills up while the app runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading

import pytest

import bento_track
from bento_track._core.clock import FakeClock

from ..helpers import seqs as _seqs
from ..helpers import wait_until
from ..support.processes import ROOT, child_env, last_json

FAST = dict(requests_per_minute=10_000, flush_interval=0.05)


def test_a_poison_event_is_isolated_in_a_stored_batch(
    emulator, tmp_path, clients
) -> None:
    emulator.inspect.set_rate_limit(10_000, 60.0)
    emulator.inspect.reject_events(email="poison@example.com")
    client = clients(
        **emulator.client_kwargs(),
        **dict(FAST, flush_interval=60.0),
        store=f"sqlite:///{tmp_path}/poison.db",
    )
    dropped: list[str] = []
    bento_track.signals.event_dropped.connect(
        recv := lambda s, **kw: dropped.append(kw["reason"]), sender=client
    )
    for i in range(1000):  # one full batch: ten chunks of 100 rows
        email = "poison@example.com" if i == 617 else f"u{i}@example.com"
        client.track("a", email=email, details={"seq": i})
    assert client.flush(30) is True
    bento_track.signals.event_dropped.disconnect(recv)
    seqs = _seqs(emulator)
    assert len(seqs) == 999 and 617 not in seqs and len(set(seqs)) == 999
    assert dropped == ["rejected"]
    stats = client.stats()
    assert stats.rejected == 1 and stats.sent == 999 and stats.queue_depth == 0
    assert stats.store is not None and stats.store.depth == 0


def test_one_429_pauses_every_process_of_the_store(emulator, tmp_path, clients) -> None:
    """Two clients on one file are two processes as the store sees them."""
    emulator.inspect.set_rate_limit(10_000, 60.0)
    clock = FakeClock()  # driven by hand; the store reads its wall time
    url = f"sqlite:///{tmp_path}/paused.db"
    a = clients(**emulator.client_kwargs(), **FAST, store=url, clock=clock)
    b = clients(**emulator.client_kwargs(), **FAST, store=url, clock=clock)
    emulator.inspect.rate_limit_storm(1, retry_after=30)
    a.track("a", email="a@example.com", details={"seq": 0})
    flusher = threading.Thread(target=a.flush, args=(10,))
    flusher.start()
    wait_until(lambda: emulator.inspect.request_counts().get("429") == 1)
    wait_until(lambda: b.stats().paused_until is not None)  # b sees a's pause
    b.track("a", email="b@example.com", details={"seq": 1})
    assert b.flush(0.5) is False  # b may not send either
    clock.advance(29.0)
    assert b.flush(0.3) is False
    assert emulator.inspect.request_counts().get("200") is None
    clock.advance(1.1)
    assert b.flush(10) is True
    flusher.join(10)
    assert sorted(_seqs(emulator)) == [0, 1]
    assert emulator.inspect.request_counts().get("429") == 1


DISK_FILLS = """
import json, os, sys, bento_track
where, kwargs = sys.argv[1], json.loads(sys.argv[2])
with open(os.path.join(where, "filler"), "wb") as f:  # most of the disk
    f.write(b"x" * (900 * 1024))
client = bento_track.Client(store=f"sqlite:///{where}/bento.db", **kwargs)
for i in range(1000):
    client.track("a", email="full@example.com", details={"seq": i, "pad": "p" * 200})
client.flush(0.5)  # Bento is up, but events cannot all be stored
full = client.stats()
os.remove(os.path.join(where, "filler"))  # the operator frees space
ok = client.flush(30)
after = client.stats()
print(json.dumps({"errors": full.store_errors, "ok": ok, "sent": after.sent,
                  "dropped": after.dropped, "depth": after.store.depth}))
sys.exit(3)
"""


def test_a_disk_that_fills_up_keeps_events_in_memory_then_delivers(
    emulator, tmp_path
) -> None:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a small private file system")
    emulator.inspect.set_rate_limit(10_000, 60.0)
    where = tmp_path / "small"
    where.mkdir()
    kwargs = dict(emulator.client_kwargs(), **dict(FAST, flush_interval=3600.0))
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f'mount -t tmpfs -o size=1m tmpfs {where} && exec "$0" -c "$1" "$2" "$3"',
            sys.executable,
            textwrap.dedent(DISK_FILLS),
            str(where),
            json.dumps(kwargs),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
        cwd=ROOT,
    )
    assert done.returncode == 3, done.stderr
    result = last_json(done.stdout)
    assert result["errors"] >= 1 and "could not write to the store" in done.stderr
    assert result["ok"], (result, done.stderr)
    assert result["sent"] == 1000 and result["dropped"] == {}
    assert result["depth"] == 0
    assert sorted(_seqs(emulator)) == list(range(1000))


def test_a_store_file_deleted_under_the_app_is_noticed_and_said(
    emulator, tmp_path, clients, caplog
) -> None:
    """Its events are gone with the file: counted as lost (never called
    kept), the error logged and counted; the app's next events go to a new
    file and are delivered."""
    emulator.inspect.set_rate_limit(10_000, 60.0)
    emulator.inspect.fail_next(1_000_000, status=503)  # the 20 stay stored
    path = tmp_path / "deleted.db"
    client = clients(
        **emulator.client_kwargs(),
        **FAST,
        retry_base_delay=0.05,
        store=f"sqlite:///{path}",
    )
    for i in range(20):
        client.track("a", email="d@example.com", details={"seq": i})
    wait_until(lambda: client.stats().store.depth == 20, 20)
    path.unlink()
    for name in ("deleted.db-wal", "deleted.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    emulator.inspect.reset()
    emulator.inspect.set_rate_limit(10_000, 60.0)
    for i in range(20, 25):
        client.track("a", email="d@example.com", details={"seq": i})
    assert client.flush(30) is True
    stats = client.stats()
    assert stats.dropped.get("store_lost") == 20
    assert stats.store_errors >= 1
    assert sorted(_seqs(emulator)) == list(range(20, 25))
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600
    assert "deleted or replaced" in caplog.text and "20 events" in caplog.text
    assert client.shutdown() == 0


def test_an_idle_process_sees_another_deliver_its_events(
    emulator, tmp_path, clients
) -> None:
    """`queue_depth` follows the store while this process is idle: events
    another process delivered leave it within a poll."""
    emulator.inspect.set_rate_limit(10_000, 60.0)
    url = f"sqlite:///{tmp_path}/idle.db"
    a = clients(
        **emulator.client_kwargs(), **dict(FAST, flush_interval=3600.0), store=url
    )
    for i in range(10):
        a.track("a", email="idle@example.com", details={"seq": i})
    wait_until(lambda: a.stats().store.depth == 10, 20)
    assert a.stats().queue_depth == 10
    clients(**emulator.client_kwargs(), **FAST, store=url)  # sends what is due
    wait_until(lambda: sorted(_seqs(emulator)) == list(range(10)), 20)
    wait_until(lambda: a.stats().queue_depth == 0, 5)
