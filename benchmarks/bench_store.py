"""Store benchmark: the durable SQLite store next to the memory default, one run.

Run: `.venv/bin/python -m benchmarks.bench_store` (env `N` events per figure,
default 20000; `ROUNDS` alternated rounds of memory then store, default 3,
medians reported; `FLEET` processes, `FLEET_EVENTS` events each over
`FLEET_SECONDS`, with `FLEET_INTERVAL` as flush_interval, for the fleet
figure). Prints one JSON line, then a table.

1. `track()` ns/call with the worker live: store vs memory (budget <= 1.2x).
   Capture is the same code either way; what differs is the worker thread
   competing for the GIL while it writes to the store.
2. Whole-process CPU per delivered event, capture to HTTP 200, both to the
   same loopback sink in a subprocess (budget: store <= 2x memory).
3. A fleet of processes each tracking a trickle: events per request with the
   memory default (each process sends its own partial batches) and with one
   store (the processes' events pool into fuller batches).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

import bento_track

# The sink's port is bench_delivery's (env `PORT`, 0 for one from the OS):
# read it after `start_sink()`, which learns the port the OS gave.
from . import bench_delivery
from .bench_delivery import PROPS, sink_count, start_sink, timeit

N = int(os.environ.get("N", "20000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
WARMUP = int(os.environ.get("WARMUP", "200"))
FLEET = int(os.environ.get("FLEET", "6"))
FLEET_EVENTS = int(os.environ.get("FLEET_EVENTS", "200"))
FLEET_SECONDS = float(os.environ.get("FLEET_SECONDS", "3.0"))
FLEET_INTERVAL = float(os.environ.get("FLEET_INTERVAL", "0.5"))
HERE = os.path.dirname(os.path.abspath(__file__))


def _client(store: str | None) -> bento_track.Client:
    """bench_delivery's client (on the sink's port, once started), with `store`."""
    return bench_delivery._our_client(store=store)


def bench_one(store: str | None, n: int) -> dict[str, Any]:
    # Warm-up: one-time lazy imports (httpcore, h11, sqlite3) belong to
    # process start, not to the events measured.
    warm = _client(store)
    for i in range(WARMUP):
        warm.track("account.signup", email=f"w{i}@example.com", fields=PROPS)
    warm.flush(30)
    warm.shutdown(10)
    client = _client(store)
    emails = [f"u{i}@example.com" for i in range(n)]
    track = client.track
    before = sink_count()
    cpu0 = time.process_time()
    ns = timeit(lambda i: track("account.signup", email=emails[i], fields=PROPS), n)
    ok = client.flush(120)
    cpu = time.process_time() - cpu0
    delivered = sink_count() - before
    client.shutdown(2)
    assert ok and delivered >= n - n % 5, (ok, delivered)
    return {
        "track_ns": round(ns),
        "delivered": delivered,
        "cpu_us_per_event": round(cpu / delivered * 1e6, 2),
    }


FLEET_CHILD = """
import sys, threading, time, bento_track
port, store, n, seconds, interval, me = sys.argv[1:7]
client = bento_track.Client(
    site_uuid="bench", publishable_key="pk_bench", secret_key="sk_bench",
    base_url=f"http://127.0.0.1:{port}/api/v1", flush_interval=float(interval),
    store=None if store == "memory" else store,
)
n, seconds = int(n), float(seconds)
tick, start = threading.Event(), time.monotonic()
for i in range(n):
    client.track("page.view", email=f"p{me}@example.com", details={"i": i})
    tick.wait(max(0.0, start + seconds * (i + 1) / n - time.monotonic()))
assert client.flush(60)
"""


def _sink_totals() -> tuple[int, int]:
    import urllib.request

    with urllib.request.urlopen(
        f"http://127.0.0.1:{bench_delivery.PORT}/count"
    ) as answer:
        doc = json.load(answer)
    return int(doc["events"]), int(doc["requests"])


def bench_fleet(store: str) -> dict[str, Any]:
    events0, requests0 = _sink_totals()
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(FLEET_CHILD),
                str(bench_delivery.PORT),
                store,
                str(FLEET_EVENTS),
                str(FLEET_SECONDS),
                str(FLEET_INTERVAL),
                str(p),
            ],
            cwd=os.path.dirname(HERE),
        )
        for p in range(FLEET)
    ]
    for child in children:
        assert child.wait(120) == 0
    events1, requests1 = _sink_totals()
    events, requests = events1 - events0, requests1 - requests0
    assert events == FLEET * FLEET_EVENTS, (events, FLEET * FLEET_EVENTS)
    return {
        "events": events,
        "requests": requests,
        "events_per_request": round(events / requests, 1),
    }


def main() -> None:
    sink = start_sink()
    tmp = tempfile.mkdtemp(prefix="bench-store-")
    try:
        rounds: list[dict[str, Any]] = []
        for r in range(ROUNDS):
            memory = bench_one(None, N)
            store = bench_one(f"sqlite:///{tmp}/bench-{r}.db", N)
            rounds.append({"memory": memory, "store": store})

        def median(kind: str, key: str) -> float:
            return float(statistics.median(x[kind][key] for x in rounds))

        fleet_memory = bench_fleet("memory")
        fleet_store = bench_fleet(f"sqlite:///{tmp}/fleet.db")
    finally:
        sink.terminate()
        sink.wait()
    result = {
        "n": N,
        "rounds": rounds,
        "memory": {k: median("memory", k) for k in ("track_ns", "cpu_us_per_event")},
        "store": {k: median("store", k) for k in ("track_ns", "cpu_us_per_event")},
        "fleet": {
            "processes": FLEET,
            "events_each": FLEET_EVENTS,
            "seconds": FLEET_SECONDS,
            "flush_interval": FLEET_INTERVAL,
            "memory": fleet_memory,
            "store": fleet_store,
        },
    }
    result["track_ratio"] = round(
        result["store"]["track_ns"] / result["memory"]["track_ns"], 3
    )
    result["cpu_ratio"] = round(
        result["store"]["cpu_us_per_event"] / result["memory"]["cpu_us_per_event"], 3
    )
    result["fill_ratio"] = round(
        fleet_store["events_per_request"] / fleet_memory["events_per_request"], 2
    )
    print(json.dumps(result))
    m, s = result["memory"], result["store"]
    print(
        textwrap.dedent(
            f"""
            figure                        memory      store       ratio   budget
            track() ns/call               {m["track_ns"]:<11.0f} {s["track_ns"]:<11.0f} {result["track_ratio"]:<7} <= 1.2
            CPU us per delivered event    {m["cpu_us_per_event"]:<11} {s["cpu_us_per_event"]:<11} {result["cpu_ratio"]:<7} <= 2
            fleet events per request      {fleet_memory["events_per_request"]:<11} {fleet_store["events_per_request"]:<11} {result["fill_ratio"]:<7} ({FLEET} processes)
            """
        )
    )


if __name__ == "__main__":
    main()
