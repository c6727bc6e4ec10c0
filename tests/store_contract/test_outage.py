"""A long outage of Bento costs the store, not the process's memory: events
tracked for 6 s while Bento answers 503 wait in the store (a SQLite file, a
Redis server); the process's peak RSS stays within a few MiB of the same run
cut to 1 s (the same pace), and everything is delivered once Bento is back.
The issue's 60-second outage is scaled down to 6 seconds at its pace for a
SQLite store (16,700 events a second). What memory the events take on their
way to the store depends on that pace and on how fast the worker drains
them, not on the outage's length, as long as the worker keeps up: Redis's
writes (a script a chunk, over a socket) drain fewer than that beside two
busy processes on 2 cores, so its run is at 5,000 a second."""

from __future__ import annotations

import collections
import json

from ..helpers import budget
from ..support.processes import last_json, reap, start_script
from ..support.stores import StoreURL

OUTAGE = 6.0
#: events tracked during the whole outage, by store
EVENTS = {"sqlite": 100_000, "redis": 30_000}

TRACK_THROUGH_OUTAGE = """
import json, sys, threading, time, bento_track
def peak_rss_kib():
    # This program's own peak (VmHWM): ru_maxrss would count the test
    # process's size at the fork too, which may hide any growth here.
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
url, kwargs, n, seconds = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
client = bento_track.Client(store=url, **kwargs)
tick = threading.Event()
start = time.monotonic()
step = max(1, n // 500)
for i in range(n):
    client.track("a", email="outage@example.com", details={"seq": i})
    if i % step == step - 1:  # spread over the outage, as an app's traffic
        tick.wait(max(0.0, start + seconds * (i + 1) / n - time.monotonic()))
tracked_at = time.monotonic()
while client.stats().store.depth < n and time.monotonic() < tracked_at + 5:
    tick.wait(0.002)
lag = time.monotonic() - tracked_at  # the last events' way into the store
stats = client.stats()
print(json.dumps({"tracked": n, "depth": stats.store.depth, "lag": lag,
                  "dropped": stats.dropped}), flush=True)
sys.stdin.readline()  # Bento is back
ok = client.flush(120)
stats = client.stats()
print(json.dumps({"ok": ok, "sent": stats.sent, "dropped": stats.dropped,
                  "peak_rss_kib": peak_rss_kib()}))
"""


def _run(emulator, url: str, n: int, seconds: float) -> dict:
    emulator.inspect.reset()
    emulator.inspect.fail_next(1_000_000, status=503)
    kwargs = budget(emulator, 10_000, 1.0, flush_interval=0.5, retry_base_delay=0.05)
    child = start_script(TRACK_THROUGH_OUTAGE, url, json.dumps(kwargs), n, seconds)
    try:
        assert child.stdout is not None and child.stdin is not None
        during = json.loads(child.stdout.readline())
        assert during["dropped"] == {} and during["depth"] == n  # all stored
        assert during["lag"] < 0.5  # grouped writes every 50 ms (loaded machine)
        assert not emulator.inspect.events()
        emulator.inspect.clear_faults()
        out, err = child.communicate("back\n", timeout=180)
    finally:
        reap(child)
    assert child.returncode == 0, err
    after = dict(last_json(out), lag=during["lag"])
    assert after["ok"] and after["sent"] == n and after["dropped"] == {}
    seqs = collections.Counter(e["details"]["seq"] for e in emulator.inspect.events())
    assert len(seqs) == n and set(seqs) == set(range(n))
    return after


def test_a_long_outage_costs_the_store_not_memory(
    emulator, store_url: StoreURL
) -> None:
    events = EVENTS[store_url.kind]
    pace = round(events / OUTAGE)
    small = _run(emulator, store_url.url(), pace, 1.0)
    large = _run(emulator, store_url.url(), events, OUTAGE)
    grew = (large["peak_rss_kib"] - small["peak_rss_kib"]) / 1024
    print(
        f"peak RSS: {small['peak_rss_kib'] / 1024:.1f} MiB after a 1 s outage "
        f"({pace:,} events), {large['peak_rss_kib'] / 1024:.1f} MiB after "
        f"{OUTAGE:g} s ({events:,}; +{grew:.1f} MiB); "
        f"last events stored {small['lag'] * 1000:.0f} / {large['lag'] * 1000:.0f} ms "
        "after their track()"
    )
    assert grew < 8.0
