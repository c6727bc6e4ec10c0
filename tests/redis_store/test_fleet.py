"""A fleet on one Redis store: eight processes in two simulated hosts (two
process groups, each with its own host name in the consumer group) share
the account's budget and one queue; processes whose clocks are five seconds
fast or slow change nothing (the budget runs on Redis's clock). The issue's
20 requests per 6 s is scaled down to 20 per 2 s: the same budget, reached
three times as fast, so the test takes seconds instead of half a minute."""

from __future__ import annotations

import json
import subprocess

from .conftest import last_json, max_in_window, posts, seqs, start_script

TRICKLE = """
import json, sys, threading, time, bento_track
url, kwargs, first, n, gap, skew = sys.argv[1], json.loads(sys.argv[2]), *map(float, sys.argv[3:7])

class Skewed:
    # This host's clock, `skew` seconds off: what a badly synced host reads.
    def monotonic(self): return time.monotonic() + skew
    def time(self): return time.time() + skew
    def wait(self, event, timeout): return event.wait(timeout)

client = bento_track.Client(store=url, clock=Skewed() if skew else None, **kwargs)
tick = threading.Event()
for i in range(int(first), int(first + n)):
    client.track("a", email=f"p{int(first)}@example.com", details={"seq": i})
    tick.wait(gap)  # a trickle, as a web app's events come
ok = client.flush(90)
stats = client.stats()
print(json.dumps({"ok": ok, "requests": stats.requests, "sent": stats.sent,
                  "dropped": stats.dropped, "reclaimed": stats.store.reclaimed,
                  "processes": stats.store.processes}))
"""


def _fleet(emulator, redis_url, *, hosts, per_host, events, gap, skews, kwargs):
    """`hosts` process groups of `per_host` processes each; every process
    tracks `events` events. Returns the children's results."""
    children: list[subprocess.Popen[str]] = []
    p = 0
    for h in range(hosts):
        url = f"{redis_url}&host=host-{'ab'[h]}"
        group = 0  # the first process of a host starts its process group
        for _ in range(per_host):
            child = start_script(
                TRICKLE,
                url,
                json.dumps(kwargs),
                p * 1000,
                events,
                gap,
                skews[p % len(skews)],
                process_group=group,
            )
            group = group or child.pid
            children.append(child)
            p += 1
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(last_json(out))
    return results


def _check(emulator, results, *, processes, events, limit, window) -> str:
    assert all(r["ok"] and not r["dropped"] for r in results), results
    want = [p * 1000 + i for p in range(processes) for i in range(events)]
    assert sorted(seqs(emulator)) == want  # every event, exactly once
    sent = posts(emulator)
    assert emulator.inspect.request_counts().get("429") is None
    assert all(r["status"] == 200 for r in sent)
    busiest = max_in_window([r["time"] for r in sent], window)
    assert busiest <= limit
    assert sum(r["requests"] for r in results) == len(sent)
    span = max(r["time"] for r in sent) - min(r["time"] for r in sent)
    return (
        f"{len(want)} events from {processes} processes in {len(sent)} requests "
        f"({len(want) / len(sent):.1f} per request) over {span:.1f} s; at most "
        f"{busiest} in any {window:g} s window (budget {limit}); 0 429s"
    )


def test_eight_processes_on_two_hosts_share_one_budget_and_one_queue(
    emulator, redis_url
) -> None:
    limit, window = 20, 2.0
    emulator.inspect.set_rate_limit(limit, window)
    kwargs = dict(
        emulator.client_kwargs(),
        requests_per_minute=limit,  # each process is given the whole budget
        rate_window=window,
        max_batch_size=10,
        flush_interval=0.2,
    )
    results = _fleet(
        emulator,
        redis_url,
        hosts=2,
        per_host=4,
        events=60,
        gap=0.02,
        skews=[0.0],
        kwargs=kwargs,
    )
    print(_check(emulator, results, processes=8, events=60, limit=limit, window=window))
    assert sum(r["reclaimed"] for r in results) == 0  # no crash, no reclaim


def test_clocks_five_seconds_off_do_not_move_the_budget(emulator, redis_url) -> None:
    limit, window = 20, 2.0
    emulator.inspect.set_rate_limit(limit, window)
    kwargs = dict(
        emulator.client_kwargs(),
        requests_per_minute=limit,
        rate_window=window,
        max_batch_size=5,
        flush_interval=0.2,
    )
    results = _fleet(
        emulator,
        redis_url,
        hosts=2,
        per_host=3,
        events=40,
        gap=0.02,
        skews=[5.0, -5.0],  # every other process fast, the others slow
        kwargs=kwargs,
    )
    print(_check(emulator, results, processes=6, events=40, limit=limit, window=window))


def test_one_429_pauses_every_process_of_every_host(emulator, redis_url) -> None:
    emulator.inspect.set_rate_limit(1000, 1.0)
    emulator.inspect.rate_limit_storm(1, retry_after=2)  # the first request: 429
    kwargs = dict(
        emulator.client_kwargs(),
        requests_per_minute=1000,
        rate_window=1.0,
        max_batch_size=10,
        flush_interval=0.1,
    )
    results = _fleet(
        emulator,
        redis_url,
        hosts=2,
        per_host=2,
        events=40,
        gap=0.01,
        skews=[0.0],
        kwargs=kwargs,
    )
    assert all(r["ok"] for r in results), results
    assert sorted(seqs(emulator)) == [p * 1000 + i for p in range(4) for i in range(40)]
    sent = posts(emulator)
    refused = [r["time"] for r in sent if r["status"] == 429]
    assert len(refused) == 1  # one 429, then everyone held off
    after = [r["time"] - refused[0] for r in sent if r["time"] > refused[0]]
    # Requests already on their way when the 429 came back still arrive
    # (at most one per other process); then nobody sends until it ends.
    flying = [t for t in after if t < 0.5]
    held = [t for t in after if 0.5 <= t < 2.0 - 0.05]
    print(
        f"1 429 (Retry-After 2 s): {len(flying)} requests already in flight, then "
        f"the next came {min(t for t in after if t >= 0.5):.2f} s after it"
    )
    assert len(flying) <= 3 and held == []
