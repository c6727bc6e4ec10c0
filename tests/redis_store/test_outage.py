"""Redis hung under load: `redis-server` SIGSTOPped while four processes on
two simulated hosts track events. `track()` never blocks nor raises; the
events wait in each process's memory and reach Redis after SIGCONT; nothing
is sent while the shared budget is out of reach, and the budget holds. The
issue's 20-second stop is scaled down to 5 seconds: what is checked (no
call of `track()` waits on Redis, nothing is sent without the budget, all
of it arrives once) does not depend on the stop's length, only the memory
the events take does (a few thousand events here)."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import threading
import time

from ..helpers import budget, max_in_window, posts, seqs, wait_until
from ..support.processes import last_json, reap, start_script
from ..support.scripts import LEAVE

OUTAGE = 5.0

STEADY = """
import json, sys, threading, time, bento_track
url, kwargs, first = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
client = bento_track.Client(store=url, **kwargs)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
took, errors, i, tick = [], 0, 0, threading.Event()
print("started", flush=True)
while not stop.is_set():
    t0 = time.perf_counter()
    try:
        client.track("a", email="steady@example.com", details={"seq": first + i})
    except Exception:
        errors += 1
    took.append(time.perf_counter() - t0)
    i += 1
    if i % 5 == 0:
        tick.wait(0.01)  # a few hundred events a second
ok = client.flush(60)
took.sort()
stats = client.stats()
print(json.dumps({"n": i, "errors": errors, "ok": ok, "dropped": stats.dropped,
                  "max_ms": took[-1] * 1000, "p99_us": took[int(len(took) * 0.99)] * 1e6,
                  "reclaimed": stats.store.reclaimed}))
"""


def test_redis_stopped_under_load_blocks_no_track_and_loses_nothing(
    emulator, own_redis
) -> None:
    limit, window = 10, 1.0
    kwargs = budget(emulator, limit, window, flush_interval=0.2)
    url = own_redis.url(visibility_timeout=3)
    children: list[subprocess.Popen[str]] = []
    for p in range(4):
        host = f"&host=host-{'ab'[p // 2]}"
        group = 0 if p % 2 == 0 else children[-1].pid
        children.append(
            start_script(
                STEADY,
                url + host,
                json.dumps(kwargs),
                p * 1_000_000,
                process_group=group,
            )
        )
    pause = threading.Event()  # the outage's own length, not a wait for a process
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "started", child.stderr
        pause.wait(1.5)
        own_redis.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            pause.wait(OUTAGE)
        finally:
            own_redis.signal(signal.SIGCONT)
        resumed_at = time.monotonic()
        pause.wait(1.5)
        results = []
        for child in children:
            out, err = child.communicate("stop\n", timeout=90)
            assert child.returncode == 0, err
            results.append(last_json(out))
    finally:
        for child in children:
            reap(child)  # killed if it still runs; its pipes closed
    assert all(r["ok"] and r["errors"] == 0 and not r["dropped"] for r in results)
    worst = max(r["max_ms"] for r in results)
    tracked = sum(r["n"] for r in results)
    counts = collections.Counter(seqs(emulator))
    want = {p * 1_000_000 + i for p, r in enumerate(results) for i in range(r["n"])}
    sent = posts(emulator)
    during = [
        r
        for r in sent
        if stopped_at + 0.5 < r["time"] < resumed_at  # after in-flight ones
    ]
    after = [r for r in sent if r["time"] >= resumed_at]
    busiest = max_in_window([r["time"] for r in sent], window)
    print(
        f"{tracked} events tracked by 4 processes; Redis stopped {OUTAGE:g} s; "
        f"track() worst {worst:.1f} ms, p99 "
        f"{max(r['p99_us'] for r in results):.0f} us, 0 errors; "
        f"{len(during)} requests during the stop, {len(after)} after; "
        f"delivered {len(counts)} distinct, "
        f"{sum(n - 1 for n in counts.values())} duplicates; at most {busiest} "
        f"requests in any {window:g} s (budget {limit}); "
        f"{sum(r['reclaimed'] for r in results)} reclaimed"
    )
    # One waiting on Redis would take its 2 s timeout; less is GIL jitter.
    assert worst < 500.0
    assert set(counts) == want and all(n == 1 for n in counts.values())
    assert not during  # no shared budget, no request
    assert emulator.inspect.request_counts().get("429") is None
    assert busiest <= limit


STAY = """
import json, sys, bento_track
client = bento_track.Client(store=sys.argv[1], **json.loads(sys.argv[2]))
sys.stdin.readline()  # delivers in the background until told to stop
print(json.dumps({"left": client.shutdown(), "sent": client.stats().sent}))
"""


def test_with_redis_down_a_sqlite_fallback_keeps_events_for_the_next_process(
    emulator, own_redis, tmp_path
) -> None:
    kwargs = budget(emulator, 1000, 1.0, flush_interval=0.1, shutdown_timeout=1.0)
    own_redis.kill()  # Redis is down from the start
    url = own_redis.url(fallback=f"sqlite:///{tmp_path}/fallback.db")
    with start_script(LEAVE, url, json.dumps(kwargs)) as child:
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert last_json(out)["left"] == 300  # nothing sent without the budget
    assert "wait in the store" in err and not posts(emulator)
    own_redis.start()  # back (empty): a new process moves the events over
    with start_script(STAY, url, json.dumps(kwargs)) as child:
        try:
            wait_until(lambda: len(set(seqs(emulator))) == 300, 30)
        finally:
            out, err = child.communicate("stop\n", timeout=60)
    assert child.returncode == 0, err
    assert last_json(out) == {"left": 0, "sent": 300}
    assert sorted(seqs(emulator)) == list(range(300))  # each once
