"""Delivery benchmark: bento_track next to its floor and to Segment's
analytics-python, in one run.

Run: `.venv/bin/python -m benchmarks.bench_delivery` (env `N` events per
figure, default 20000; `ROUNDS` alternated rounds of ours, the floor's and
Segment's, default 3, medians reported; `SUSTAIN_WINDOWS`, `SUSTAIN_LIMIT`,
`SUSTAIN_WINDOW` for the rate-ceiling figure; `PORT` for the sink, default
18766, 0 to let the OS pick a free one, reported as `sink_port`). Prints one
JSON line, then a table.

1. `track()` hot path, ns/call: ours vs Segment's `Client.track` (budget <= 1/8);
   and two fresh clients of ours taking turns, without and with a trivial
   `before_send` (`lambda event: event`) (issue 19: what a hook costs).
2. Whole-process CPU per delivered event, capture to HTTP 200, all against the
   same loopback sink in a subprocess: ours against the floor pipeline (the
   least code that does the job: build the event dict, append it to a deque,
   orjson-encode batches of 1,000, POST each with one `httpx.Client`; budget
   <= 2.5x), and the floor with the checks ours keeps (a well-formed email,
   flat fields) beside it; Segment's figure printed too (a ratio to Segment
   alone was retired: its cost halved between two runs on one machine).
3. Offered more than the ceiling, sustained delivery against the emulator with
   a small window: events/s vs (limit x batch size / window), and 429s (must be 0).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from typing import Any

import httpx
import orjson

import bento_track

HERE = os.path.dirname(os.path.abspath(__file__))
N = int(os.environ.get("N", "20000"))
PORT = int(os.environ.get("PORT", "18766"))
WARMUP = int(os.environ.get("WARMUP", "200"))
PROPS = {"first_name": "Jesse", "last_name": "Pinkman", "plan": "pro", "amount": 12.5}


def start_sink() -> subprocess.Popen[str]:
    """The sink, listening; with `PORT` 0 the port it bound becomes `PORT`."""
    global PORT
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "sink.py"), str(PORT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    # The ready line is all the sink ever prints: the pipe is closed at once so
    # it does not stay open (and unclosed) for the rest of the run.
    with proc.stdout:
        ready = proc.stdout.readline().split()
    assert ready[:1] == ["ready"] and len(ready) == 2, f"sink did not start: {ready}"
    PORT = int(ready[1])
    return proc


def sink_count() -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/count") as answer:
        return int(json.load(answer)["events"])


def timeit(fn: Any, n: int, reps: int = 5) -> float:
    """Median ns per call over `reps` runs of n/reps calls (as peers_enqueue)."""
    per = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        for i in range(n // reps):
            fn(i)
        per.append((time.perf_counter_ns() - t0) / (n // reps))
    return statistics.median(per)


def _our_client(**options: Any) -> bento_track.Client:
    return bento_track.Client(
        site_uuid="bench",
        publishable_key="pk_bench",
        secret_key="sk_bench",
        base_url=f"http://127.0.0.1:{PORT}/api/v1",
        max_queue_size=10**7,
        requests_per_minute=100_000,
        flush_interval=0.5,
        **options,
    )


def _same_event(event: Any) -> Any:
    """The trivial `before_send`: every event sent as it is."""
    return event


def bench_hook(n: int) -> dict[str, int]:
    """`track()` ns/call without and with a trivial `before_send`, each
    client's worker live and delivering to the sink. The two take turns in
    chunks of 100 calls, each first every other time, so both meet their
    workers' encoding (the GIL) and any drift of the machine's speed alike;
    totals over N calls each."""
    plain = _our_client()
    hooked = _our_client(before_send=_same_event)
    emails = [f"h{i}@example.com" for i in range(n)]
    spent = {"plain": 0, "hooked": 0}
    cpu = {"plain": 0, "hooked": 0}
    chunk = 100
    pair = (("plain", plain), ("hooked", hooked))
    for start in range(0, n - n % chunk, chunk):
        # Which goes first alternates: the first of a pair meets more of the
        # other's worker, woken by the other's last calls.
        for name, client in pair if start // chunk % 2 else pair[::-1]:
            track = client.track
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            for i in range(start, start + chunk):
                track("account.signup", email=emails[i], fields=PROPS)
            spent[name] += time.perf_counter_ns() - t0
            cpu[name] += time.thread_time_ns() - c0
    ok = plain.flush(120) and hooked.flush(120)
    plain.shutdown(2)
    hooked.shutdown(2)
    assert ok
    calls = max(1, n - n % chunk)
    return {
        "track_plain_ns": round(spent["plain"] / calls),
        "track_hook_ns": round(spent["hooked"] / calls),
        # CPU of the calling thread only: without the time spent waiting for
        # the GIL while a worker encodes, which swamps a hook's cost
        "track_plain_cpu_ns": round(cpu["plain"] / calls),
        "track_hook_cpu_ns": round(cpu["hooked"] / calls),
    }


def bench_ours(n: int) -> dict[str, Any]:
    # Warm-up, as for the peer: one-time lazy imports (httpcore, h11, ssl)
    # belong to process start, not to the events measured.
    warm = _our_client()
    for i in range(WARMUP):
        warm.track("account.signup", email=f"w{i}@example.com", fields=PROPS)
    warm.shutdown(10)
    client = _our_client()
    emails = [f"u{i}@example.com" for i in range(n)]
    track = client.track
    before = sink_count()
    cpu0 = time.process_time()
    ns = timeit(lambda i: track("account.signup", email=emails[i], fields=PROPS), n)
    t0 = time.perf_counter()
    ok = client.flush(120)
    drain = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    delivered = sink_count() - before
    client.shutdown(2)
    assert ok and delivered >= n - n % 5, (ok, delivered)
    return {
        "track_ns": round(ns),
        **bench_hook(n),
        "delivered": delivered,
        "drain_s": round(drain, 3),
        "cpu_us_per_event": round(cpu / delivered * 1e6, 2),
    }


#: the floor's email check: something@something.something, no spaces
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_FLAT = (str, int, float, bool, type(None))


def _checked(email: str, fields: dict[str, Any]) -> None:
    """What the validated floor checks: a well-formed email, flat fields."""
    if _EMAIL.fullmatch(email) is None:
        raise ValueError(email)
    for value in fields.values():
        if type(value) not in _FLAT:
            raise ValueError(value)


def bench_floor(n: int, *, validated: bool = False) -> dict[str, Any]:
    """The floor pipeline: the least code that gets `n` events to the sink,
    in this thread. Each event: its dict built (with its capture time),
    appended to a deque; then batches of 1,000 orjson-encoded and POSTed
    with one `httpx.Client`. `validated`: each event's email and fields
    checked first (what ours keeps, with its messages, on `track()`).
    WARMUP events go first, unmeasured, as for ours and the peer."""
    emails = [f"f{i}@example.com" for i in range(max(n, WARMUP))]
    queue: deque[dict[str, Any]] = deque()
    append, utc, now = queue.append, dt.timezone.utc, dt.datetime.now
    url = f"http://127.0.0.1:{PORT}/api/v1/batch/events"

    def deliver(count: int) -> float:
        """Process CPU seconds to get `count` events to the sink."""
        cpu0 = time.process_time()
        for i in range(count):
            if validated:
                _checked(emails[i], PROPS)
            append(
                {
                    "type": "account.signup",
                    "email": emails[i],
                    "fields": PROPS,
                    "date": now(utc),
                }
            )
        popleft = queue.popleft
        while queue:
            batch = [popleft() for _ in range(min(1000, len(queue)))]
            http.post(url, content=orjson.dumps({"events": batch})).raise_for_status()
        return time.process_time() - cpu0

    with httpx.Client(headers={"Content-Type": "application/json"}) as http:
        deliver(WARMUP)
        before = sink_count()
        cpu = deliver(n)
    delivered = sink_count() - before
    assert delivered == n, (delivered, n)
    return {"delivered": delivered, "cpu_us_per_event": round(cpu / n * 1e6, 2)}


def bench_segment(n: int) -> dict[str, Any]:
    import segment.analytics as analytics

    def make() -> Any:
        return analytics.Client(
            "wk", host=f"http://127.0.0.1:{PORT}", max_queue_size=10**7, upload_size=100
        )

    warm = make()
    for i in range(WARMUP):
        warm.track(user_id=f"w{i}", event="account.signup", properties=PROPS)
    warm.flush()
    warm.join()
    client = make()
    before = sink_count()
    cpu0 = time.process_time()
    ns = timeit(
        lambda i: client.track(
            user_id=f"u{i}", event="account.signup", properties=PROPS
        ),
        n,
    )
    t0 = time.perf_counter()
    client.flush()
    client.join()
    drain = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    delivered = sink_count() - before
    return {
        "track_ns": round(ns),
        "delivered": delivered,
        "drain_s": round(drain, 3),
        "cpu_us_per_event": round(cpu / max(1, delivered) * 1e6, 2),
    }


def bench_sustained() -> dict[str, Any]:
    """Offer more than the ceiling; measure delivery over whole budget cycles.

    A cycle is `limit` consecutive requests. The rate is the events carried by
    the requests of cycles 2..windows+1 divided by the time from the first
    request of cycle 2 to the first of cycle windows+2: steady state, without
    the first burst and without cutting a cycle in two.
    """
    from bento_track.emulator import EmulatorServer

    limit = int(os.environ.get("SUSTAIN_LIMIT", "20"))
    window = float(os.environ.get("SUSTAIN_WINDOW", "2.0"))
    windows = int(os.environ.get("SUSTAIN_WINDOWS", "3"))
    batch = int(os.environ.get("SUSTAIN_BATCH", "1000"))
    ceiling = limit * batch / window  # events per second
    needed = limit * (windows + 1) + 1  # requests to observe
    offered = batch * (needed + limit)
    with EmulatorServer(
        port=0, requests_per_minute=limit, rate_window=window
    ) as server:
        server.inspect.set_rate_limit(limit, window)
        client = bento_track.Client(
            **server.client_kwargs(),
            requests_per_minute=limit,
            rate_window=window,
            max_batch_size=batch,
            max_queue_size=offered,
            max_queue_bytes=2**34,
            flush_interval=0.5,
        )
        for i in range(offered):
            client.track("bench.load", email="load@example.com", details={"i": i})
        deadline = time.monotonic() + window * (windows + 3) + 10
        gate = threading.Event()
        while time.monotonic() < deadline:
            if len(_batch_requests(server)) >= needed:
                break
            gate.wait(0.05)
        client.shutdown(0.1)
        requests = _batch_requests(server)
        counts = server.inspect.request_counts()
    assert len(requests) >= needed, f"only {len(requests)} requests in time"
    measured = requests[limit : needed - 1]
    span = requests[needed - 1]["time"] - requests[limit]["time"]
    events = sum(r["count"] for r in measured if r["status"] == 200)
    rate = events / span
    return {
        "limit": limit,
        "window_s": window,
        "batch": batch,
        "ceiling_events_per_s": round(ceiling),
        "events_per_s": round(rate),
        "of_ceiling": round(rate / ceiling, 4),
        "requests_429": int(counts.get("429", 0)),
        "measured_s": round(span, 3),
        "requests": len(requests),
    }


def _batch_requests(server: Any) -> list[dict[str, Any]]:
    return [r for r in server.inspect.requests() if r["path"].endswith("/batch/events")]


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (the runs kept as they were)."""
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = [run[key] for run in runs]
        out[key] = statistics.median(values)
    out["rounds"] = runs
    return out


def main() -> None:
    rounds = int(os.environ.get("ROUNDS", "3"))
    sink = start_sink()
    ours_runs: list[dict[str, Any]] = []
    floor_runs: list[dict[str, Any]] = []
    checked_runs: list[dict[str, Any]] = []
    seg_runs: list[dict[str, Any]] = []
    try:
        # Alternated, so a drift of the machine's speed lands on all alike.
        for _ in range(rounds):
            ours_runs.append(bench_ours(N))
            floor_runs.append(bench_floor(N))
            checked_runs.append(bench_floor(N, validated=True))
            seg_runs.append(bench_segment(N))
    finally:
        sink.terminate()
        sink.wait()
    ours = _median_run(ours_runs)
    floor = _median_run(floor_runs)
    checked = _median_run(checked_runs)
    seg = _median_run(seg_runs)
    out: dict[str, Any] = {
        "N": N,
        "rounds": rounds,
        "sink_port": PORT,
        "bento_track": ours,
        "floor": floor,
        "floor_validated": checked,
        "segment": seg,
    }
    out["track_ratio"] = round(ours["track_ns"] / seg["track_ns"], 4)
    out["hook_ratio"] = round(ours["track_hook_ns"] / ours["track_plain_ns"], 4)
    out["floor_ratio"] = round(ours["cpu_us_per_event"] / floor["cpu_us_per_event"], 4)
    out["floor_validated_ratio"] = round(
        ours["cpu_us_per_event"] / checked["cpu_us_per_event"], 4
    )
    out["cpu_ratio"] = round(ours["cpu_us_per_event"] / seg["cpu_us_per_event"], 4)
    try:
        out["sustained"] = bench_sustained()
    except ImportError as exc:  # the emulator is an optional part of a checkout
        out["sustained"] = {"skipped": str(exc)}
    print(json.dumps(out))
    print(
        f"{'figure':<26}{'bento_track':>12}{'floor':>8}{'ours/floor':>12}"
        f"{'segment':>10}{'ours/segment':>14}  budget"
    )
    print(
        f"{'track() ns/call':<26}{ours['track_ns']:>12.0f}{'':>8}{'':>12}"
        f"{seg['track_ns']:>10.0f}{out['track_ratio']:>14.3f}  ours/segment <= 0.125"
    )
    print(
        f"{'CPU us/delivered event':<26}{ours['cpu_us_per_event']:>12.2f}"
        f"{floor['cpu_us_per_event']:>8.2f}{out['floor_ratio']:>12.2f}"
        f"{seg['cpu_us_per_event']:>10.2f}{out['cpu_ratio']:>14.3f}  ours/floor <= 2.5"
    )
    print(
        f"{'  floor with the checks':<26}{'':>12}"
        f"{checked['cpu_us_per_event']:>8.2f}{out['floor_validated_ratio']:>12.2f}"
        f"{'':>10}{'':>14}  (email regex, flat fields)"
    )
    print(
        f"track() ns/call, without / with a trivial before_send (interleaved): "
        f"wall {ours['track_plain_ns']} / {ours['track_hook_ns']} "
        f"(x{out['hook_ratio']}), calling thread's CPU "
        f"{ours['track_plain_cpu_ns']} / {ours['track_hook_cpu_ns']}; "
        f"with the hook / Segment: {ours['track_hook_ns'] / seg['track_ns']:.4f} "
        "(budget <= 0.125)"
    )
    sus = out["sustained"]
    if "of_ceiling" in sus:
        print(
            f"sustained: {sus['events_per_s']} events/s of a {sus['ceiling_events_per_s']}"
            f" ceiling ({sus['of_ceiling']:.1%}; budget >= 95%), 429s: "
            f"{sus['requests_429']} (budget 0)"
        )


if __name__ == "__main__":
    main()
