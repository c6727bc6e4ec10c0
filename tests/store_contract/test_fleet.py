"""A fleet on one durable store (SQLite, Redis): eight processes in two
simulated hosts (process groups; for Redis, a host name each in the
consumer group) share the account's budget and one queue, and deliver
each event once. The issue's 20 requests per 6 s is scaled down to 20 per
2 s: the same budget, reached three times as fast."""

from __future__ import annotations

from ..helpers import budget
from ..support.fleet import check_fleet, run_fleet
from ..support.stores import StoreURL


def test_eight_processes_on_two_hosts_share_one_budget_and_one_queue(
    emulator, store_url: StoreURL
) -> None:
    limit, window = 20, 2.0
    kwargs = budget(
        emulator,
        limit,  # each process is given the whole budget
        window,
        max_batch_size=10,
        flush_interval=0.2,
    )

    def url_of_host(h: int) -> str:
        if store_url.kind == "redis":
            return store_url.url(host=f"host-{'ab'[h]}")
        return store_url.url()  # a file is one host's

    results = run_fleet(
        url_of_host, kwargs, hosts=2, per_host=4, events=60, gap=0.02, skews=[0.0]
    )
    print(
        check_fleet(
            emulator, results, processes=8, events=60, limit=limit, window=window
        )
    )
    assert sum(r["reclaimed"] for r in results) == 0  # no crash, no reclaim
