"""Served benchmark: what `BentoMiddleware` adds to a request as an HTTP
client sees it, with the app under a real server.

Run: `.venv/bin/python -m benchmarks.bench_served` (env `N` requests per
figure, default 4000; `REPS` rounds, default 9). Prints one JSON line, then
a table.

The capture benchmark calls the ASGI app directly, so the whole request is
the app's own ~25 us and any middleware shows large. Here the same minimal
Starlette app runs under uvicorn (one process each: bare, ours with one rule
every request matches and the identity from a header, Sentry's), and one
keep-alive `httpx.Client` posts to them in alternation (`compare`, REPS
rounds, medians): us per request round trip, loopback. Our client in the
server process is real and pointed at an emulator, its request budget spent
before timing, as in `bench_capture` (events built and enqueued, worker
asleep). Not a budget of issue 4: context for its ASGI figure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx

from .bench_capture import EMAIL, RULES, _identify, compare, quiet_client, starlette_app

N = int(os.environ.get("N", "4000"))
_keep: list[Any] = []  # the server process's emulator and client


def bare_app() -> Any:
    """uvicorn factory: the bare app."""
    return starlette_app()


def bento_app() -> Any:
    """uvicorn factory: the app under `BentoMiddleware`, its client quiet."""
    from bento_track import BentoMiddleware
    from bento_track.emulator import EmulatorServer

    server = EmulatorServer(port=0, requests_per_minute=100_000)
    server.start()
    client = quiet_client(server)
    _keep.extend([server, client])
    return BentoMiddleware(
        starlette_app(), client=client, events=RULES, identify=_identify
    )


def sentry_app() -> Any:
    """uvicorn factory: the app under Sentry's ASGI middleware."""
    import sentry_sdk
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware

    sentry_sdk.init(
        dsn="http://k@127.0.0.1:9/1",
        traces_sample_rate=0.0,
        default_integrations=False,
    )
    return SentryAsgiMiddleware(starlette_app())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(factory: str) -> Iterator[str]:
    """uvicorn serving `benchmarks.bench_served:<factory>`; yields its URL."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            f"benchmarks.bench_served:{factory}",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        preexec_fn=_die_with_parent,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/signup", timeout=1, trust_env=False)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn ({factory}) did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _die_with_parent() -> None:
    """In the server process (Linux): be sent SIGTERM when the benchmark
    dies, even by SIGKILL (a smoke test's timeout), so no server outlives it."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def post_block(http: httpx.Client, url: str) -> Callable[[int], None]:
    headers = {"x-user-email": EMAIL}

    def block(count: int) -> None:
        for _ in range(count):
            http.post(f"{url}/signup", headers=headers).raise_for_status()

    return block


def main() -> dict[str, Any]:
    with ExitStack() as stack, httpx.Client(trust_env=False) as http:
        urls = {
            name: stack.enter_context(served(f"{name}_app"))
            for name in ("bare", "bento", "sentry")
        }
        times = compare({name: post_block(http, url) for name, url in urls.items()}, N)
    out: dict[str, Any] = {"n": N}
    for name, value in times.items():
        out[f"served_{name}_us"] = round(value, 2)
    out["served_ratio"] = round(times["bento"] / times["bare"], 3)
    out["served_added_us"] = round(times["bento"] - times["bare"], 2)
    out["served_sentry_ratio"] = round(times["sentry"] / times["bare"], 3)
    return out


def table(out: dict[str, Any]) -> str:
    bare = out["served_bare_us"]
    lines = [
        "minimal Starlette app under uvicorn, keep-alive httpx client, loopback",
        f"{'server':28} {'us/request':>11} {'ratio':>7} {'added us':>9}",
    ]
    for label, key in (
        ("bare", "served_bare_us"),
        ("BentoMiddleware, 1 rule", "served_bento_us"),
        ("Sentry ASGI middleware", "served_sentry_us"),
    ):
        lines.append(
            f"{label:28} {out[key]:11.2f} {out[key] / bare:7.3f} {out[key] - bare:9.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    result = main()
    print(json.dumps(result))
    print(table(result))
