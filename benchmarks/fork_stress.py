"""Fork stress: gunicorn `--preload` forking workers while the master's
client is in its first send, again and again (issue 17, item 2).

Run: `.venv/bin/python -m benchmarks.fork_stress` (env `RUNS`, default 30;
`REQUESTS` per run, default 400; `WORKERS`, default 4). Prints a line per
run, then one JSON line with the tally.

Each run starts gunicorn `--preload -w WORKERS` on the WSGI app of
`tests/store_contract/test_gunicorn.py` with the default memory store. The
client is made in the master, which also tracks an event before the fork, with a
flush interval drawn per run between 10 and 150 ms: the master's delivery
thread makes its first send while gunicorn forks, at a different moment of
that send in each run. Then REQUESTS requests, each tracking one event (8
threads), SIGTERM, and the emulator (in this process) counts what arrived.
A run passes when every request's event arrived exactly once (the master's
event is counted apart). Before the fix this lost a worker's events in
some runs: the child inherited a half-imported httpcore.

Every server runs in a process group of its own, killed at the end of its
run whatever happened (`tests/support/processes.py`'s `Server`), so nothing is
left behind.
"""

from __future__ import annotations

import collections
import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bento_track.emulator import EmulatorServer
from integrations.conftest import BIN, ROOT, Server, free_port, server_env
from tests.store_contract.test_gunicorn import APP

RUNS = int(os.environ.get("RUNS", "30"))
REQUESTS = int(os.environ.get("REQUESTS", "400"))
WORKERS = int(os.environ.get("WORKERS", "4"))
THREADS = 8
#: seq of the event the master tracks before forking (requests use 0..N-1,
#: the readiness probe -1)
BEFORE_FORK = -2
#: `APP`, plus the master's event before gunicorn forks its workers
STRESS_APP = (
    APP
    + f"""
client.track("master.before_fork", email="g@example.com",
             details={{"seq": {BEFORE_FORK}, "pid": os.getpid()}})
"""
)


def hit(
    url: str, first: int, count: int, pids: collections.Counter[str], lock: Any
) -> None:
    """Requests `seq=first..first+count-1`, noting which worker served each."""
    with httpx.Client(trust_env=False, timeout=30) as http:
        for seq in range(first, first + count):
            pid = http.get(f"{url}/?seq={seq}").raise_for_status().text
            with lock:
                pids[pid] += 1


def one_run(emulator: EmulatorServer, workdir: Path, run: int) -> dict[str, Any]:
    """One gunicorn start, REQUESTS requests, SIGTERM; what arrived."""
    emulator.inspect.reset()
    interval = round(random.uniform(0.01, 0.15), 3)
    kwargs = dict(
        emulator.client_kwargs(),
        flush_interval=interval,
        # A budget no run reaches: this counts forks, not rate limits.
        requests_per_minute=100_000,
        shutdown_timeout=10.0,
    )
    port = free_port()
    server = Server(
        [
            str(BIN / "gunicorn"),
            "--preload",
            "-w",
            str(WORKERS),
            "-b",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "20",
            "app:app",
        ],
        env=server_env(
            emulator,
            TEST_STORE="memory",
            TEST_KWARGS=json.dumps(kwargs),
            PYTHONPATH=f"{ROOT}{os.pathsep}{workdir}",
        ),
        cwd=workdir,
        log=workdir / f"gunicorn-{run}.log",
        url=f"http://127.0.0.1:{port}",
    )
    started = time.monotonic()
    pids: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    try:
        server.wait_http("/ready", timeout=60)
        share = -(-REQUESTS // THREADS)
        threads = [
            threading.Thread(
                target=hit,
                args=(
                    server.url,
                    t * share,
                    min(share, REQUESTS - t * share),
                    pids,
                    lock,
                ),
            )
            for t in range(THREADS)
            if t * share < REQUESTS
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        code: int | None = server.stop(60)
    except AssertionError as exc:  # did not start or did not stop in time
        code = None
        print(f"run {run}: {exc}")
    finally:
        output = server.output()
        server.kill()  # the process group: no worker outlives its run
    events = emulator.inspect.events()
    seqs = collections.Counter(e["details"]["seq"] for e in events)
    wanted = set(range(REQUESTS))
    arrived = sum(1 for seq in seqs if seq in wanted)
    return {
        "run": run,
        "flush_interval": interval,
        "served": sum(pids.values()),
        "workers": len(pids),
        "arrived": arrived,
        "duplicates": sum(n - 1 for n in seqs.values() if n > 1),
        "master_event": seqs.get(BEFORE_FORK, 0),
        "exit_code": code,
        "worker_errors": output.count("delivery worker error"),
        "broken": output.count("delivery in this process is broken"),
        "undelivered": output.count("undelivered") + output.count("events lost"),
        "seconds": round(time.monotonic() - started, 1),
        "log": output,
    }


def main() -> dict[str, Any]:
    """RUNS runs; prints one line each, then the tally as JSON."""
    results = []
    with tempfile.TemporaryDirectory(prefix="fork-stress-") as tmp:
        workdir = Path(tmp)
        (workdir / "app.py").write_text(STRESS_APP)
        with EmulatorServer(port=0, requests_per_minute=100_000) as emulator:
            for run in range(1, RUNS + 1):
                result = one_run(emulator, workdir, run)
                results.append(result)
                ok = (
                    result["arrived"] == REQUESTS
                    and result["duplicates"] == 0
                    and result["exit_code"] == 0
                )
                if not ok:  # what the server said, to see why
                    print(result["log"], end="")
                print(
                    f"run {run:>3}: {result['arrived']}/{REQUESTS} arrived, "
                    f"{result['workers']} workers, master's event "
                    f"{result['master_event']}x, dupes {result['duplicates']}, "
                    f"flush_interval {result['flush_interval']} s, "
                    f"{result['seconds']} s{'' if ok else '  <-- FAILED'}",
                    flush=True,
                )
    complete = [r for r in results if r["arrived"] == REQUESTS and r["duplicates"] == 0]
    for result in results:
        del result["log"]
    tally = {
        "runs": RUNS,
        "requests": REQUESTS,
        "workers": WORKERS,
        "complete_runs": len(complete),
        "clean_exits": sum(1 for r in results if r["exit_code"] == 0),
        "fewest_arrived": min(r["arrived"] for r in results),
        "master_event_once": sum(1 for r in results if r["master_event"] == 1),
        "runs_with_worker_errors": sum(1 for r in results if r["worker_errors"]),
        "results": results,
    }
    print(json.dumps(tally))
    return tally


if __name__ == "__main__":
    main()
