"""gunicorn `--preload -w 4` with the client made in the master and one
SQLite store: every worker's events are delivered, and SIGTERM loses none.
Real gunicorn, real HTTP to its workers, the emulator over loopback."""

from __future__ import annotations

import collections
import json
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import httpx
import pytest

from .conftest import ROOT, child_env, wait_until

pytest.importorskip("gunicorn", reason="the dev extra installs gunicorn")

APP = """
import json, os, bento_track

# Made in the master (--preload): each forked worker gets its own delivery
# thread and its own connection to the store.
client = bento_track.Client(
    store=os.environ["TEST_STORE"], **json.loads(os.environ["TEST_KWARGS"])
)


def app(environ, start_response):
    seq = int(environ["QUERY_STRING"].partition("=")[2])
    client.track("page.view", email="g@example.com",
                 details={"seq": seq, "pid": os.getpid()})
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_preloaded_gunicorn_workers_deliver_everything_and_sigterm_loses_none(
    emulator, tmp_path
) -> None:
    emulator.inspect.set_rate_limit(10_000, 60.0)
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    port = _free_port()
    env = child_env()
    env["TEST_STORE"] = f"sqlite:///{tmp_path}/gunicorn.db"
    # A long flush interval: the events wait in the store until SIGTERM.
    env["TEST_KWARGS"] = json.dumps(
        dict(emulator.client_kwargs(), flush_interval=3600.0, shutdown_timeout=5.0)
    )
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
    )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/?seq=-1").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 30)
        pids: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()

        def hit(first: int) -> None:
            with httpx.Client() as http:
                for seq in range(first, first + 50):
                    pid = http.get(f"http://127.0.0.1:{port}/?seq={seq}").text
                    with lock:
                        pids[pid] += 1

        threads = [threading.Thread(target=hit, args=(t * 50,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sum(pids.values()) == 400
        assert len(pids) == 4, pids  # every worker served (and tracked)
        assert emulator.inspect.events() == []  # still waiting in the store
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    events = emulator.inspect.events()
    seqs = collections.Counter(e["details"]["seq"] for e in events)
    assert sorted(seqs) == [-1, *range(400)], out
    assert set(seqs.values()) == {1}  # each once
    by_worker = collections.Counter(str(e["details"]["pid"]) for e in events)
    assert set(pids) <= set(by_worker)
    assert "undelivered" not in out
