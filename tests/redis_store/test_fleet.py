"""A fleet on one Redis store, in two simulated hosts (two process groups,
each with its own host name in the consumer group): processes whose clocks
are five seconds fast or slow change nothing (the budget runs on Redis's
clock), and one 429 pauses every process of every host. (That a fleet shares
one budget and one queue is the store contract's, `tests/store_contract`.)"""

from __future__ import annotations

from ..helpers import budget, posts, seqs
from ..support.fleet import check_fleet, run_fleet


def _hosts(redis_url: str):
    return lambda h: f"{redis_url}&host=host-{'ab'[h]}"


def test_clocks_five_seconds_off_do_not_move_the_budget(emulator, redis_url) -> None:
    limit, window = 20, 2.0
    kwargs = budget(emulator, limit, window, max_batch_size=5, flush_interval=0.2)
    results = run_fleet(
        _hosts(redis_url),
        kwargs,
        hosts=2,
        per_host=3,
        events=40,
        gap=0.02,
        skews=[5.0, -5.0],  # every other process fast, the others slow
    )
    print(
        check_fleet(
            emulator, results, processes=6, events=40, limit=limit, window=window
        )
    )


def test_one_429_pauses_every_process_of_every_host(emulator, redis_url) -> None:
    emulator.inspect.rate_limit_storm(1, retry_after=2)  # the first request: 429
    kwargs = budget(emulator, 1000, 1.0, max_batch_size=10, flush_interval=0.1)
    results = run_fleet(
        _hosts(redis_url), kwargs, hosts=2, per_host=2, events=40, gap=0.01, skews=[0.0]
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
