"""Many processes on one SQLite store, against the emulator over loopback:
the acceptance items of issue 12 that need real processes (one budget for
all, SIGKILL, a new process delivering what a dead one left, fork)."""

from __future__ import annotations

import collections
import json
import os
import signal
import time

from ..helpers import posts as _post_requests
from ..helpers import seqs as _seqs
from .conftest import last_json, max_in_window, run_script, start_script

TRICKLE = """
import json, sys, threading, time, bento_track
url, kwargs, first, n, gap = sys.argv[1], json.loads(sys.argv[2]), *map(float, sys.argv[3:6])
client = bento_track.Client(store=url, **kwargs)
tick = threading.Event()
for i in range(int(first), int(first + n)):
    client.track("a", email=f"p{int(first)}@example.com", details={"seq": i})
    tick.wait(gap)  # a trickle, as a web app's events come
ok = client.flush(60)
stats = client.stats()
print(json.dumps({"ok": ok, "requests": stats.requests, "sent": stats.sent,
                  "dropped": stats.dropped}))
"""


def test_six_processes_share_one_budget_and_deliver_each_event_once(
    emulator, tmp_path
) -> None:
    """The account's budget (5 requests per 0.5 s here: 20 per 6 s scaled
    down) given to each of six processes: with one store they hold it
    together."""
    limit, window = 5, 0.5
    emulator.inspect.set_rate_limit(limit, window)
    url = f"sqlite:///{tmp_path}/fleet.db"
    kwargs = dict(
        emulator.client_kwargs(),
        requests_per_minute=limit,
        rate_window=window,
        max_batch_size=10,
        flush_interval=0.1,
    )
    children = [
        start_script(TRICKLE, url, json.dumps(kwargs), p * 1000, 50, 0.02)
        for p in range(6)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(last_json(out))
    assert all(r["ok"] for r in results), results
    seqs = _seqs(emulator)
    want = [p * 1000 + i for p in range(6) for i in range(50)]
    assert sorted(seqs) == want  # every event, exactly once
    posts = _post_requests(emulator)
    assert emulator.inspect.request_counts().get("429") is None
    assert all(r["status"] == 200 for r in posts)
    assert max_in_window([r["time"] for r in posts], window) <= limit
    assert sum(r["requests"] for r in results) == len(posts)


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
while client.stats().store.depth and time.monotonic() < deadline:
    tick.wait(0.05)
ok = client.stats().store.depth == 0
store = client.stats().store
print(json.dumps({"ok": ok, "depth": store.depth, "reclaimed": store.reclaimed,
                  "sent": client.stats().sent}))
"""


def test_sigkill_while_bento_fails_loses_nothing_tracked_half_a_second_before(
    emulator, tmp_path
) -> None:
    emulator.inspect.set_rate_limit(100_000, 60.0)
    emulator.inspect.fail_next(1_000_000, status=503)
    url = f"sqlite:///{tmp_path}/killed.db"
    kwargs = dict(
        emulator.client_kwargs(),
        requests_per_minute=100_000,
        flush_interval=0.05,
        retry_base_delay=0.05,
    )
    # `with`: the child's three pipes are closed once it is dead; the kill is
    # in `finally` so that a failing loop never leaves `with` waiting on it.
    with start_script(KILLED, url, json.dumps(kwargs)) as child:
        assert child.stdout is not None
        marks: list[tuple[int, float]] = []
        started = time.monotonic()
        try:
            for line in child.stdout:
                seq, at = line.split()
                marks.append((int(seq), float(at)))
                if time.monotonic() - started > 3.0:
                    break
        finally:
            child.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
        child.wait(10)
    assert emulator.inspect.request_counts().get("503", 0) > 0  # it was failing
    assert not _seqs(emulator)
    # Every event whose track() returned at least 0.5 s before the kill.
    must = max(seq for seq, at in marks if at <= killed_at - 0.5)
    emulator.inspect.clear_faults()
    done = run_script(DRAIN, url, json.dumps(kwargs))
    result = last_json(done.stdout)
    assert result["ok"] and result["depth"] == 0
    counts = collections.Counter(_seqs(emulator))
    missing = [s for s in range(must + 1) if s not in counts]
    duplicates = sum(n - 1 for n in counts.values())
    print(
        f"killed after {marks[-1][0]} events; {must + 1} tracked >= 0.5 s before "
        f"the kill; delivered {len(counts)} distinct, {duplicates} duplicates, "
        f"{result['reclaimed']} reclaimed"
    )
    assert missing == []
    assert duplicates <= result["reclaimed"]  # only reclaimed events can repeat


def test_a_forked_child_shares_the_store(emulator, tmp_path, clients) -> None:
    emulator.inspect.set_rate_limit(10_000, 60.0)
    client = clients(
        **emulator.client_kwargs(),
        store=f"sqlite:///{tmp_path}/fork.db",
        flush_interval=60.0,
        requests_per_minute=10_000,
    )
    for i in range(5):
        client.track("a", email="parent@example.com", details={"seq": i})
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for i in range(7):
                client.track("a", email="child@example.com", details={"seq": 100 + i})
            code = 0 if client.flush(20) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.flush(20)
    # The parent's events were in the store (or its inbox) at the fork: one
    # queue, so each is delivered once, by whichever process claims it.
    assert sorted(_seqs(emulator)) == [0, 1, 2, 3, 4, *range(100, 107)]


def test_what_a_process_left_is_delivered_by_the_next_one(emulator, tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/left.db"
    kwargs = dict(emulator.client_kwargs(), flush_interval=60.0)
    emulator.inspect.fail_next(1_000_000, status=503)
    leave = """
import json, sys, bento_track
client = bento_track.Client(store=sys.argv[1], **json.loads(sys.argv[2]),
                            shutdown_timeout=0.3, retry_base_delay=0.05)
for i in range(300):
    client.track("a", email="left@example.com", details={"seq": i})
print(json.dumps({"left": client.shutdown()}))
"""
    done = run_script(leave, url, json.dumps(kwargs))
    assert last_json(done.stdout)["left"] == 300
    assert "wait in the store" in done.stderr
    emulator.inspect.clear_faults()
    drain = dict(kwargs, flush_interval=0.1)
    result = last_json(run_script(DRAIN, url, json.dumps(drain)).stdout)
    assert result["ok"] and result["depth"] == 0
    assert sorted(_seqs(emulator)) == list(range(300))
