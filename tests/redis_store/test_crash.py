"""SIGKILL on a Redis store: a shipper killed while Bento holds its request
(the emulator delays the answer) has its batch taken over by another
process within the visibility timeout plus a poll; a tracking process
killed while Bento fails loses nothing it tracked half a second before."""

from __future__ import annotations

import collections
import json
import signal
import time

import pytest

from .conftest import last_json, posts, run_script, seqs, start_script, wait_until

VISIBILITY = 2.0

SHIP = """
import json, sys, bento_track
url, kwargs = sys.argv[1], json.loads(sys.argv[2])
client = bento_track.Client(store=url, **kwargs)
for i in range(30):
    client.track("a", email="ship@example.com", details={"seq": i})
client.flush(60)  # claims the batch and waits in the (delayed) request
"""


@pytest.mark.parametrize(
    "bento_accepted", [False, True], ids=["before-2xx", "after-2xx"]
)
def test_a_killed_shippers_batch_arrives_within_the_visibility_timeout(
    emulator, redis_url, clients, bento_accepted
) -> None:
    emulator.inspect.set_rate_limit(1000, 1.0)
    url = f"{redis_url}&visibility_timeout={VISIBILITY:g}"
    kwargs = dict(
        emulator.client_kwargs(),
        requests_per_minute=1000,
        rate_window=1.0,
        flush_interval=60.0,
    )
    emulator.inspect.slow_next(1, 1.0)  # Bento answers a second late
    with start_script(SHIP, url, json.dumps(kwargs)) as child:
        try:
            # The delayed request reached Bento: the fault was taken.
            wait_until(lambda: not emulator.inspect.faults()["queue"], 30)
        finally:
            child.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
        child.wait(10)
    if not bento_accepted:
        # Bento never finished that request: a reset abandons the late
        # answer, as if the connection's end had cancelled it.
        emulator.inspect.reset()
        emulator.inspect.set_rate_limit(1000, 1.0)
    taker = clients(**kwargs, store=url)  # another process on the store
    wait_until(lambda: taker.stats().sent == 30, VISIBILITY + 10)
    arrived = max(r["time"] for r in posts(emulator) if r["status"] == 200)
    counts = collections.Counter(seqs(emulator))
    duplicates = sum(n - 1 for n in counts.values())
    # The store's figures are read in the background: wait for a reading
    # made after the takeover.
    wait_until(lambda: taker.stats().store.reclaimed >= 30, 10)
    reclaimed = taker.stats().store.reclaimed
    print(
        f"kill {'after' if bento_accepted else 'before'} Bento's 2xx: the batch "
        f"arrived {arrived - killed_at:.2f} s after the kill (visibility "
        f"{VISIBILITY:g} s); {duplicates} duplicates, {reclaimed} reclaimed"
    )
    assert arrived - killed_at <= VISIBILITY + 2.0
    assert sorted(counts) == list(range(30))  # none lost
    assert reclaimed == 30
    assert duplicates == (30 if bento_accepted else 0)


KILLED = """
import json, sys, threading, time, bento_track
url, kwargs = sys.argv[1], json.loads(sys.argv[2])
client = bento_track.Client(store=url, **kwargs)
tick = threading.Event()
i = 0
while True:
    client.track("a", email="killed@example.com", details={"seq": i})
    if i % 50 == 49:  # the last event whose track() returned, and when
        print(i, time.monotonic(), flush=True)
        tick.wait(0.005)  # a busy app: up to 10,000 events a second
    i += 1
"""

DRAIN = """
import json, sys, threading, time, bento_track
url, kwargs = sys.argv[1], json.loads(sys.argv[2])
# A new process on the store: it tracks nothing, and delivers what is there.
client = bento_track.Client(store=url, **kwargs)
deadline, tick = time.monotonic() + 60, threading.Event()
def store_figures():
    # Read in the background; `stale` until a reading came back.
    while True:
        store = client.stats().store
        if not store.stale or time.monotonic() > deadline:
            return store
        tick.wait(0.05)
while store_figures().depth and time.monotonic() < deadline:
    tick.wait(0.05)
store = store_figures()
print(json.dumps({"ok": store.depth == 0, "depth": store.depth,
                  "reclaimed": store.reclaimed, "sent": client.stats().sent}))
"""


def test_a_tracking_process_killed_while_bento_fails_loses_nothing_tracked(
    emulator, redis_url
) -> None:
    emulator.inspect.set_rate_limit(100_000, 1.0)
    emulator.inspect.fail_next(1_000_000, status=503)
    url = f"{redis_url}&visibility_timeout={VISIBILITY:g}"
    kwargs = dict(
        emulator.client_kwargs(),
        requests_per_minute=100_000,
        rate_window=1.0,
        flush_interval=0.05,
        retry_base_delay=0.05,
    )
    with start_script(KILLED, url, json.dumps(kwargs)) as child:
        assert child.stdout is not None
        marks: list[tuple[int, float]] = []
        started = time.monotonic()
        try:
            for line in child.stdout:
                seq, at = line.split()
                marks.append((int(seq), float(at)))
                if time.monotonic() - started > 2.0:
                    break
        finally:
            child.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
        child.wait(10)
    assert emulator.inspect.request_counts().get("503", 0) > 0  # it was failing
    assert not seqs(emulator)
    must = max(seq for seq, at in marks if at <= killed_at - 0.5)
    emulator.inspect.clear_faults()
    result = last_json(run_script(DRAIN, url, json.dumps(kwargs)).stdout)
    assert result["ok"] and result["depth"] == 0
    counts = collections.Counter(seqs(emulator))
    missing = [s for s in range(must + 1) if s not in counts]
    duplicates = sum(n - 1 for n in counts.values())
    print(
        f"killed after {marks[-1][0] + 1} events; {must + 1} tracked >= 0.5 s "
        f"before the kill; delivered {len(counts)} distinct, {duplicates} "
        f"duplicates, {result['reclaimed']} reclaimed"
    )
    assert missing == []
    assert duplicates <= result["reclaimed"]  # only reclaimed events can repeat
