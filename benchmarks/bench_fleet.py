"""Fleet benchmark: the Redis store next to the memory default, same load.

Run: `.venv/bin/python -m benchmarks.bench_fleet` (env `FLEET` processes,
default 8, in two simulated hosts (process groups); `EVENTS` each, default
400, tracked over `SECONDS` (default 6); `INTERVAL` the flush interval,
default 1.0; the account's budget `LIMIT` requests per `WINDOW` seconds,
default 20 per 6, given to every process as `requests_per_minute`). Starts
its own redis-server and an emulator that enforces the budget. Prints one
JSON line, then a table.

Each process tracks a trickle. With the memory default each one keeps its
own queue and its own copy of the budget: the fleet sends its own partial
batches and up to FLEET times the budget, which Bento answers with 429s.
With one Redis store the fleet's events pool into fuller batches and the
budget holds for all of them together.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from typing import Any

from bento_track.emulator import EmulatorServer
from tests.support.processes import in_process_group

FLEET = int(os.environ.get("FLEET", "8"))
EVENTS = int(os.environ.get("EVENTS", "400"))
SECONDS = float(os.environ.get("SECONDS", "6"))
INTERVAL = float(os.environ.get("INTERVAL", "1.0"))
LIMIT = int(os.environ.get("LIMIT", "20"))
WINDOW = float(os.environ.get("WINDOW", "6"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = """
import json, sys, threading, time, bento_track
store, kwargs, n, seconds, me = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
client = bento_track.Client(store=None if store == "memory" else store, **kwargs)
tick, start = threading.Event(), time.monotonic()
for i in range(n):
    client.track("page.view", email=f"p{me}@example.com", details={"seq": me * 1_000_000 + i})
    tick.wait(max(0.0, start + seconds * (i + 1) / n - time.monotonic()))
assert client.flush(300)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server of the benchmark's own (no persistence), answering PING."""
    import redis

    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (apt-get install redis-server)"
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    deadline, tick = time.monotonic() + 20, threading.Event()
    while True:
        try:
            if db.ping():
                break
        except redis.ConnectionError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, "no redis-server"
        tick.wait(0.02)
    # A Redis younger than a window holds its first window (a restart must not
    # hand out a second one): let one window pass, as in production it has.
    while int(db.info("server")["uptime_in_seconds"]) < WINDOW + 1:
        tick.wait(0.1)
    db.close()
    return proc, port


def run(emulator: EmulatorServer, store: str) -> dict[str, Any]:
    emulator.inspect.reset()
    emulator.inspect.set_rate_limit(LIMIT, WINDOW)
    kwargs = dict(
        emulator.client_kwargs(),
        requests_per_minute=LIMIT,  # each process is given the account's budget
        rate_window=WINDOW,
        flush_interval=INTERVAL,
    )
    started = time.monotonic()
    children: list[subprocess.Popen[bytes]] = []
    leader = 0
    for p in range(FLEET):
        host = p * 2 // FLEET  # two hosts: two process groups, two names
        url = store if store == "memory" else f"{store}&host=host-{host}"
        first = p % max(1, FLEET // 2) == 0
        group = 0 if first else leader  # the host's first process leads its group
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    textwrap.dedent(CHILD),
                    url,
                    json.dumps(kwargs),
                    str(EVENTS),
                    str(SECONDS),
                    str(p),
                ],
                cwd=ROOT,
                **in_process_group(group),
            )
        )
        if first:
            leader = children[-1].pid
    for child in children:
        assert child.wait(600) == 0
    took = time.monotonic() - started
    requests = [
        r for r in emulator.inspect.requests() if r["path"].endswith("/batch/events")
    ]
    ok = [r for r in requests if r["status"] == 200]
    events = {e["details"]["seq"] for e in emulator.inspect.events()}
    assert len(events) == FLEET * EVENTS, (len(events), FLEET * EVENTS)
    times = sorted(r["time"] for r in requests)
    busiest, j = 0, 0
    for i, t in enumerate(times):
        while t - times[j] >= WINDOW:
            j += 1
        busiest = max(busiest, i - j + 1)
    span = max(times[-1] - times[0], WINDOW)
    return {
        "events": len(events),
        "requests": len(requests),
        "accepted_requests": len(ok),
        "rate_limited": sum(1 for r in requests if r["status"] == 429),
        "events_per_request": round(len(events) / max(1, len(ok)), 1),
        "requests_per_minute": round(len(requests) / span * 60, 1),
        "busiest_window": busiest,
        "seconds": round(took, 1),
    }


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="bench-fleet-")
    redis_proc, port = start_redis(tmp)
    try:
        with EmulatorServer(
            port=0, requests_per_minute=LIMIT, rate_window=WINDOW
        ) as emulator:
            memory = run(emulator, "memory")
            fleet = run(emulator, f"redis://127.0.0.1:{port}/0?namespace=bench")
    finally:
        redis_proc.kill()
        redis_proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "processes": FLEET,
        "events_each": EVENTS,
        "seconds": SECONDS,
        "flush_interval": INTERVAL,
        "budget": {"requests": LIMIT, "window": WINDOW},
        "memory": memory,
        "redis": fleet,
        "fill_ratio": round(
            fleet["events_per_request"] / memory["events_per_request"], 2
        ),
    }
    print(json.dumps(result))
    m, r = memory, fleet
    print(
        textwrap.dedent(
            f"""
            {FLEET} processes on 2 hosts, {EVENTS} events each over {SECONDS:g} s; budget {LIMIT} per {WINDOW:g} s
            figure                          memory      redis
            events per accepted request     {m["events_per_request"]:<11} {r["events_per_request"]:<11}
            requests (429s among them)      {m["requests"]:<4} ({m["rate_limited"]:<3})  {r["requests"]:<4} ({r["rate_limited"]:<3})
            requests per minute             {m["requests_per_minute"]:<11} {r["requests_per_minute"]:<11}
            most requests in any window     {m["busiest_window"]:<11} {r["busiest_window"]:<11} (budget {LIMIT})
            seconds to deliver everything   {m["seconds"]:<11} {r["seconds"]:<11}
            """
        )
    )


if __name__ == "__main__":
    main()
