"""gunicorn `--preload -w 4` with the client made in the master and one
durable store (SQLite, Redis): every worker's events are delivered, and
SIGTERM loses none. Real gunicorn, real HTTP to its workers, the emulator
over loopback."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import httpx
import pytest

from ..helpers import budget, wait_until
from ..support.processes import ROOT, child_env, free_port, kill_group
from ..support.stores import StoreURL

pytest.importorskip("gunicorn", reason="the dev extra installs gunicorn")

APP = """
import json, os, bento_track

# Made in the master (--preload): each forked worker gets its own delivery
# thread and its own connection to the store (in Redis, its own name in the
# group).
client = bento_track.Client(
    store=os.environ["TEST_STORE"], **json.loads(os.environ["TEST_KWARGS"])
)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/ready":  # the test's probe: nothing tracked
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ready"]
    seq = int(environ["QUERY_STRING"].partition("=")[2])
    client.track("page.view", email="g@example.com",
                 details={"seq": seq, "pid": os.getpid()})
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"""


def test_preloaded_gunicorn_workers_deliver_everything_and_sigterm_loses_none(
    emulator, store_url: StoreURL, tmp_path
) -> None:
    emulator.inspect.set_rate_limit(1000, 1.0)
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    # A long flush interval: the events wait in the store until SIGTERM.
    kwargs = budget(emulator, 1000, 1.0, flush_interval=3600.0, shutdown_timeout=5.0)
    env = child_env(TEST_STORE=str(store_url), TEST_KWARGS=json.dumps(kwargs))
    env["PYTHONPATH"] = f"{ROOT}:{tmp_path}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--preload",
            "-w",
            "4",
            "-b",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "20",
            "app:app",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its workers are killed with it, whatever happens
    )
    try:

        def up() -> bool:
            assert server.poll() is None, server.communicate()[0]
            try:
                return httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 60)
        pids: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()

        def hit(first: int) -> None:
            with httpx.Client(timeout=60) as http:
                for seq in range(first, first + 50):
                    pid = http.get(f"http://127.0.0.1:{port}/?seq={seq}").text
                    with lock:
                        pids[pid] += 1

        threads = [threading.Thread(target=hit, args=(t * 50,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert sum(pids.values()) == 400
        assert len(pids) == 4, pids  # every worker served (and tracked)
        try:
            wait_until(lambda: store_url.depth() == 400, 60)
        except AssertionError:
            os.killpg(server.pid, signal.SIGKILL)
            raise AssertionError(
                f"{store_url.depth()} of 400 events in the store; gunicorn said:\n"
                + server.communicate(timeout=30)[0]
            ) from None
        assert emulator.inspect.events() == []  # still waiting in the store
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=90)
    finally:
        kill_group(server)
    events = emulator.inspect.events()
    seqs = collections.Counter(e["details"]["seq"] for e in events)
    assert sorted(seqs) == list(range(400)), out
    assert set(seqs.values()) == {1}  # each once
    by_worker = collections.Counter(str(e["details"]["pid"]) for e in events)
    assert set(pids) <= set(by_worker)
    assert "undelivered" not in out
