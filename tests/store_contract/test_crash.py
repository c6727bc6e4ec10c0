"""Processes that die on a durable store (SQLite, Redis), against the
emulator over loopback: a shipper killed while Bento holds its request has
its batch taken over by another process (SQLite: at once, the dead process
being on this host; Redis: after the visibility timeout); a tracking
process killed while Bento fails loses nothing it tracked half a second
before; what a process left at its exit is delivered by the next one; a
forked child shares its parent's store."""

from __future__ import annotations

import collections
import json
import signal
import time

import pytest

from ..helpers import budget, posts, seqs, wait_until
from ..support.processes import (
    in_forked_child,
    killed_while_running,
    last_json,
    run_script,
    start_script,
)
from ..support.scripts import DRAIN, LEAVE, busy_until_killed
from ..support.stores import StoreURL

LEASE_TIMEOUT = 2.0

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
def test_a_killed_shippers_batch_is_taken_over_by_another_process(
    emulator, store_url: StoreURL, clients, bento_accepted
) -> None:
    url = store_url.url(lease_timeout=f"{LEASE_TIMEOUT:g}")
    kwargs = budget(emulator, 1000, 1.0, flush_interval=60.0)
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
    taker_kwargs = dict(kwargs)
    if store_url.kind == "sqlite":
        # A lease SQLite takes over goes back to the queue, where a partial
        # batch waits out the flush interval from the last batch's claim
        # (Redis's claim takes a reclaimed chunk at once).
        taker_kwargs["flush_interval"] = 0.5
    taker = clients(**taker_kwargs, store=url)  # another process on the store
    after = store_url.takeover_after(LEASE_TIMEOUT)
    wait_until(lambda: taker.stats().sent == 30, after + 10)
    if bento_accepted:  # and the held request ends too (SQLite takes over sooner)
        wait_until(lambda: sum(r["status"] == 200 for r in posts(emulator)) == 2, 10)
    arrived = max(r["time"] for r in posts(emulator) if r["status"] == 200)
    counts = collections.Counter(seqs(emulator))
    duplicates = sum(n - 1 for n in counts.values())
    # The store's figures may be read in the background: wait for a reading
    # made after the takeover.
    wait_until(lambda: taker.stats().store.reclaimed >= 30, 10)
    reclaimed = taker.stats().store.reclaimed
    print(
        f"kill {'after' if bento_accepted else 'before'} Bento's 2xx: the batch "
        f"arrived {arrived - killed_at:.2f} s after the kill (takeover after "
        f"{after:g} s); {duplicates} duplicates, {reclaimed} reclaimed"
    )
    assert arrived - killed_at <= after + 2.0
    assert sorted(counts) == list(range(30))  # none lost
    assert reclaimed == 30
    assert duplicates == (30 if bento_accepted else 0)


KILLED = busy_until_killed(
    'client.track("a", email="killed@example.com", details={"seq": i})'
)


def test_a_tracking_process_killed_while_bento_fails_loses_nothing_tracked(
    emulator, store_url: StoreURL
) -> None:
    emulator.inspect.fail_next(1_000_000, status=503)
    url = store_url.url(lease_timeout=f"{LEASE_TIMEOUT:g}")
    kwargs = budget(emulator, 100_000, 1.0, flush_interval=0.05, retry_base_delay=0.05)
    marks, killed_at = killed_while_running(
        KILLED, url, json.dumps(kwargs), seconds=2.0
    )
    assert emulator.inspect.request_counts().get("503", 0) > 0  # it was failing
    assert not seqs(emulator)
    # Every event whose track() returned at least 0.5 s before the kill.
    must = max(seq for seq, at in marks if at <= killed_at - 0.5)
    emulator.inspect.clear_faults()
    result = last_json(run_script(DRAIN, url, json.dumps(kwargs), timeout=120).stdout)
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


def test_what_a_process_left_is_delivered_by_the_next_one(
    emulator, store_url: StoreURL
) -> None:
    kwargs = budget(
        emulator,
        1000,
        1.0,
        flush_interval=60.0,
        shutdown_timeout=0.3,
        retry_base_delay=0.05,
    )
    emulator.inspect.fail_next(1_000_000, status=503)
    done = run_script(LEAVE, store_url, json.dumps(kwargs))
    assert last_json(done.stdout)["left"] == 300
    assert "wait in the store" in done.stderr
    emulator.inspect.clear_faults()
    drain = dict(kwargs, flush_interval=0.1)
    result = last_json(run_script(DRAIN, store_url, json.dumps(drain)).stdout)
    assert result["ok"] and result["depth"] == 0
    assert sorted(seqs(emulator)) == list(range(300))


def test_a_forked_child_shares_the_store(
    emulator, store_url: StoreURL, clients
) -> None:
    emulator.inspect.set_rate_limit(10_000, 1.0)
    client = clients(
        **emulator.client_kwargs(),
        store=str(store_url),
        flush_interval=60.0,
        requests_per_minute=10_000,
        rate_window=1.0,
    )
    for i in range(5):
        client.track("a", email="parent@example.com", details={"seq": i})

    def child() -> str:
        for i in range(7):
            client.track("a", email="child@example.com", details={"seq": 100 + i})
        return f"flushed {client.flush(30)}"

    assert in_forked_child(child) == "flushed True"
    assert client.flush(30)
    # The parent's events were in the store (or its inbox) at the fork: one
    # queue, so each is delivered once, by whichever process claims it.
    assert sorted(seqs(emulator)) == [0, 1, 2, 3, 4, *range(100, 107)]
