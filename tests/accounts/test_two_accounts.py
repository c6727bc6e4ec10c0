"""Two Bento accounts given one store (a shared deploy template: staging
next to production): every event arrives at its own account, with its own
keys, once, and none at the other. Real processes, a real SQLite file or
Redis database, each account's own emulator over loopback."""

from __future__ import annotations

import json
from collections import Counter

from bento_track.cli.store import describe

from ..support.processes import finish, last_json, start_script

WRITER = """
import json, sys, bento_track
url, kwargs, account = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
first, n, flush = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
client = bento_track.Client(store=url, **kwargs)
for i in range(first, first + n):
    client.track("a", email=f"{account}@example.com",
                 details={"seq": i, "account": account})
ok = client.flush(flush)
left = client.shutdown()
print(json.dumps({"ok": ok, "left": left, "sent": client.stats().sent}))
"""


def run_writers(store_url, emulators, jobs, flush=60.0):
    """Start every (account, first seq, count) at once; their JSON results."""
    children = []
    for account, first, n in jobs:
        kwargs = dict(
            emulators[account].client_kwargs(),
            # A young Redis holds its first budget window: keep windows short.
            requests_per_minute=600,
            rate_window=1.0,
            max_batch_size=50,
            flush_interval=0.05,
            retry_base_delay=0.05,
            shutdown_timeout=1.0,
        )
        children.append(
            start_script(
                WRITER, store_url, json.dumps(kwargs), account, first, n, flush
            )
        )
    return [(last_json(out), err) for out, err in finish(children)]


def arrived(emulator):
    return [
        (e["details"]["account"], e["details"]["seq"])
        for e in emulator.inspect.events()
    ]


def refused(emulator):
    return {
        k: v
        for k, v in emulator.inspect.request_counts().items()
        if k in ("401", "403")
    }


def test_two_accounts_two_processes_each_on_one_store(store_url, emulators) -> None:
    jobs = [
        ("alpha", 0, 750),
        ("alpha", 10_000, 750),
        ("bravo", 0, 750),
        ("bravo", 10_000, 750),
    ]
    results = run_writers(store_url, emulators, jobs)
    assert all(r["ok"] and r["left"] == 0 for r, _ in results), results
    for name, emulator in emulators.items():
        got = Counter(arrived(emulator))
        want = {(name, i) for first in (0, 10_000) for i in range(first, first + 750)}
        # Its own 1,500, each once, none of the other's.
        missing = sorted(want - set(got))
        twice = sorted(k for k, n in got.items() if n > 1)
        foreign = sorted(set(got) - want)
        assert (missing, twice, foreign) == ([], [], []), (
            name,
            missing[:20],
            len(missing),
            twice[:20],
            len(twice),
            foreign[:20],
            len(foreign),
            results,
        )
        assert refused(emulator) == {}  # never the other account's keys


def test_a_lone_process_leaves_the_other_accounts_backlog_alone(
    store_url, emulators
) -> None:
    alpha, bravo = emulators["alpha"], emulators["bravo"]
    # Alpha's Bento is down: its 500 events stay in the store at exit.
    alpha.inspect.fail_next(1_000_000, status=503)
    [(result, err)] = run_writers(store_url, emulators, [("alpha", 0, 500)], flush=0.5)
    assert result["left"] == 500
    assert "all wait in the store" in err and "lost" not in err
    alpha.inspect.reset()
    alpha.inspect.set_rate_limit(10_000, 60.0)

    # A process of bravo alone on that store: it sends its own, not alpha's.
    [(result, _)] = run_writers(store_url, emulators, [("bravo", 0, 50)])
    assert result["ok"] and result["left"] == 0
    assert sorted(arrived(bravo)) == [("bravo", i) for i in range(50)]
    assert arrived(alpha) == [] and refused(bravo) == {}
    info = describe(store_url)
    assert {a["site_uuid"]: a["depth"] for a in info["accounts"]}["site-alpha"] == 500
    assert "pk-alpha" not in json.dumps(info) and "sk-alpha" not in json.dumps(info)

    # Alpha's next process delivers its backlog, with its own keys.
    [(result, _)] = run_writers(store_url, emulators, [("alpha", 1_000, 1)])
    assert result["ok"] and result["left"] == 0
    assert sorted(arrived(alpha)) == sorted(
        [("alpha", i) for i in range(500)] + [("alpha", 1_000)]
    )
    assert len(arrived(bravo)) == 50 and refused(alpha) == {}
