"""`bento-track store redis://...`: the fleet's depth, pending and reclaimed
counts and its budget, read without writing."""

from __future__ import annotations

import json
import os

from bento_track.cli import main


def test_store_command_shows_a_redis_store(
    stores, redis_server, redis_url, capsys
) -> None:
    store = stores.open()
    store.put([b'{"seq":%d}' % i for i in range(25)])
    lease = store.claim(False).lease  # held by this process
    assert lease is not None
    db = redis_server.client()
    keys_before = sorted(db.keys("*"))
    assert main(["store", redis_url]) == 0
    out = capsys.readouterr().out
    assert "(Redis, namespace t" in out
    assert "events     25 (oldest" in out
    assert "pending    10 events held by 1 processes" in out
    assert f"10 events (site (none)) by pid {os.getpid()} on " in out
    assert "budget     1 of 3 requests in the current 1 s window; not paused" in out
    assert "processes  1 seen in the last minute" in out
    assert main(["store", redis_url, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "redis" and info["depth"] == 25 and info["leased"] == 10
    assert info["reclaimed"] == 0 and info["lease_list"][0]["events"] == 10
    assert sorted(db.keys("*")) == keys_before  # it wrote nothing
    db.close()


def test_store_command_on_no_store_and_no_server(redis_server, capsys) -> None:
    assert main(["store", redis_server.url(namespace="nothing-here")]) == 2
    assert "no store in namespace 'nothing-here'" in capsys.readouterr().err
    assert main(["store", "redis://127.0.0.1:1/0"]) == 2
    assert "cannot read the Redis store" in capsys.readouterr().err
