"""Where the delivery path's CPU goes: cProfile of `N` events from `track()`
to the loopback sink's 200, in every thread of the process (the caller's:
`track()`; the worker's: encoding, batching, the requests), in one table.
What `bench_delivery` measures as CPU per delivered event, taken apart.

Run: `.venv/bin/python -m benchmarks.profile_delivery` (env `N`, default
20000; `SORT`, a `pstats` sort key, default `tottime`; `LINES`, default 30).
Times are each thread's CPU (`time.thread_time`), as `bench_delivery`
counts; profiling slows every call alike-ish: read the shares.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import threading
import time
from typing import Any

from . import bench_delivery as bench

N = int(os.environ.get("N", "20000"))
SORT = os.environ.get("SORT", "tottime")
LINES = int(os.environ.get("LINES", "30"))


def profile_threads() -> list[cProfile.Profile]:
    """Run each thread started from now on under a profiler of its own
    (`cProfile` sees only the thread that enabled it); their profiles. Each
    counts its thread's CPU time (`time.thread_time`): waiting on a socket
    or a lock costs nothing, as in `bench_delivery`'s CPU figure."""
    profiles: list[cProfile.Profile] = []
    run = threading.Thread.run

    def profiled(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()
        try:
            run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled  # type: ignore[method-assign]
    return profiles


def main() -> None:
    sink = bench.start_sink()
    try:
        warm = bench._our_client()  # lazy imports belong to process start
        for i in range(bench.WARMUP):
            warm.track("account.signup", email=f"w{i}@example.com", fields=bench.PROPS)
        warm.shutdown(10)
        workers = profile_threads()
        caller = cProfile.Profile(time.thread_time)
        emails = [f"u{i}@example.com" for i in range(N)]
        before = bench.sink_count()
        caller.enable()
        client = bench._our_client()
        track = client.track
        for i in range(N):
            track("account.signup", email=emails[i], fields=bench.PROPS)
        assert client.flush(120)
        caller.disable()
        client.shutdown(2)  # the worker thread ends: its profile is complete
        delivered = bench.sink_count() - before
    finally:
        sink.terminate()
        sink.wait()
    stats: Any = pstats.Stats(caller)
    for profile in workers:
        stats.add(profile)
    print(f"{delivered} events delivered; {len(workers)} threads besides the caller")
    stats.strip_dirs().sort_stats(SORT).print_stats(LINES)


if __name__ == "__main__":
    main()
