"""A fleet of processes on one store: each tracks a trickle of events, as a
web app's come, then flushes and reports what it did as JSON; processes run
in simulated hosts (a process group each, and for Redis a host name of its
own in the consumer group)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from ..helpers import max_in_window, posts, seqs
from .processes import finish, last_json, start_script

#: argv: URL, client options (JSON), first seq, events, gap (s), clock skew (s)
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
store = client.stats().store
# flush() returns once this process's events are settled, maybe while it is
# still sending others' events: its counts are read once it has stopped.
left = client.shutdown(30)
stats = client.stats()
print(json.dumps({"ok": ok and left == 0, "requests": stats.requests,
                  "sent": stats.sent, "responses": stats.responses,
                  "dropped": stats.dropped, "reclaimed": store.reclaimed,
                  "processes": store.processes}))
"""


def run_fleet(
    url_of_host: Callable[[int], str],
    kwargs: dict[str, Any],
    *,
    hosts: int,
    per_host: int,
    events: int,
    gap: float,
    skews: list[float],
) -> list[dict[str, Any]]:
    """`hosts` process groups of `per_host` processes each (host `h` on the
    store URL `url_of_host(h)`); process `p` tracks `events` events from seq
    `p * 1000`, with clock skew `skews[p % len(skews)]`. Returns what each
    reported, in order."""
    children: list[subprocess.Popen[str]] = []
    p = 0
    for h in range(hosts):
        group = 0  # the first process of a host starts its process group
        for _ in range(per_host):
            child = start_script(
                TRICKLE,
                url_of_host(h),
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
    return [last_json(out) for out, _ in finish(children)]


def check_fleet(
    emulator: Any,
    results: list[dict[str, Any]],
    *,
    processes: int,
    events: int,
    limit: int,
    window: float,
) -> str:
    """Every event arrived once, in requests that kept within the budget and
    met no 429; a line saying how."""
    assert all(r["ok"] and not r["dropped"] for r in results), results
    want = [p * 1000 + i for p in range(processes) for i in range(events)]
    assert sorted(seqs(emulator)) == want  # every event, exactly once
    sent = posts(emulator)
    assert emulator.inspect.request_counts().get("429") is None
    assert all(r["status"] == 200 for r in sent)
    times = sorted(r["time"] for r in sent)
    busiest = max_in_window(times, window)
    assert busiest <= limit, [round(t - times[0], 3) for t in times]
    made = sum(r["requests"] for r in results)
    assert made == len(sent), (made, len(sent), [r["responses"] for r in results])
    span = max(r["time"] for r in sent) - min(r["time"] for r in sent)
    return (
        f"{len(want)} events from {processes} processes in {len(sent)} requests "
        f"({len(want) / len(sent):.1f} per request) over {span:.1f} s; at most "
        f"{busiest} in any {window:g} s window (budget {limit}); 0 429s"
    )
