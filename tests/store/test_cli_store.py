"""`bento-track store URL`: an operator's view of a store, read-only."""

from __future__ import annotations

import json
import os

from bento_track.cli import main


def test_store_command_shows_depth_age_leases_and_budget(
    make_store, tmp_path, capsys
) -> None:
    store = make_store()
    other = make_store()
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
    from bento_track.queues.url import open_store

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
