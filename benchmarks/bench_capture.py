"""Capture benchmark: bento_track's middlewares and log handler next to the
bare app, Sentry's middlewares and the stdlib handlers, in one run.

Run: `.venv/bin/python -m benchmarks.bench_capture` (env `N` requests or
records per figure, default 20000). Prints one JSON line, then a table.

1. ASGI: us/request of a minimal Starlette app (the peer script's app) called
   straight through ASGI, bare / under `BentoMiddleware` with one rule that
   matches every request (identity from a header) / under Sentry's ASGI
   middleware. Budget: ours <= 1.15x bare.
2. WSGI: the same with a minimal Flask app, bare / `BentoWSGIMiddleware` /
   Sentry's WSGI middleware (budget <= 1.15x bare); and the fixed cost over a
   trivial WSGI callable, in us.
3. Logging: `logger.warning(...)` through `BentoHandler`: untagged vs a
   `NullHandler` (budget <= 1.05x), tagged vs a stdlib `QueueHandler`
   (budget: cheaper).

The client is real, pointed at the emulator on loopback, with its request
budget spent before timing starts (one request per hour): every event is
built, validated and enqueued exactly as in production, but the worker
thread stays asleep, so delivery's CPU does not land in the figures (the
delivery benchmark measures that).
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.handlers
import os
import queue
import statistics
import time
from collections.abc import Callable
from typing import Any

import bento_track
from bento_track.emulator import EmulatorServer

N = int(os.environ.get("N", "20000"))
REPS = 5
EMAIL = "u@example.com"
HEADERS = [
    (b"host", b"example.com"),
    (b"user-agent", b"bench"),
    (b"x-user-email", b"u@example.com"),
]
SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/signup",
    "raw_path": b"/signup",
    "query_string": b"",
    "root_path": "",
    "headers": HEADERS,
    "client": ("127.0.0.1", 5000),
    "server": ("127.0.0.1", 80),
}
ENVIRON = {
    "REQUEST_METHOD": "POST",
    "PATH_INFO": "/signup",
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "SERVER_NAME": "example.com",
    "SERVER_PORT": "80",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "example.com",
    "HTTP_USER_AGENT": "bench",
    "HTTP_X_USER_EMAIL": EMAIL,
    "wsgi.url_scheme": "http",
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
    "wsgi.version": (1, 0),
}
RULES = {"POST /signup": "account.signup"}


def _identify(info: Any) -> str | None:
    return info.header("x-user-email")


def median_us(run_block: Callable[[int], None], n: int) -> float:
    """Median us per operation over REPS blocks of n/REPS operations."""
    per = []
    block = max(1, n // REPS)
    for _ in range(REPS):
        t0 = time.perf_counter_ns()
        run_block(block)
        per.append((time.perf_counter_ns() - t0) / block / 1000)
    return statistics.median(per)


def quiet_client(server: EmulatorServer) -> bento_track.Client:
    """A real client whose one request per hour is spent before timing."""
    client = bento_track.Client(
        **server.client_kwargs(),
        requests_per_minute=1,
        rate_window=3600,
        flush_interval=3600,
        max_queue_size=10**7,
        max_queue_bytes=2**31,
    )
    client.track("bench.warmup", email=EMAIL)
    assert client.flush(10), client.stats()
    return client


# -- ASGI --------------------------------------------------------------------------


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def home(request: Any) -> Any:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/signup", home, methods=["GET", "POST"])])


def asgi_us(app: Any, n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def block(count: int) -> None:
        for _ in range(count):
            await app(dict(SCOPE), receive, send)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(block(min(2000, n)))  # warm-up
        return median_us(lambda count: loop.run_until_complete(block(count)), n)
    finally:
        loop.close()


# -- WSGI --------------------------------------------------------------------------


def flask_app() -> Any:
    import flask

    app = flask.Flask("bench")

    @app.route("/signup", methods=["GET", "POST"])
    def home() -> str:
        return "ok"

    return app.wsgi_app


def trivial_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def wsgi_us(app: Any, n: int) -> float:
    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return None

    def block(count: int) -> None:
        for _ in range(count):
            body = app(dict(ENVIRON), start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

    block(min(2000, n))
    return median_us(block, n)


# -- logging -----------------------------------------------------------------------


def logger_with(name: str, handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(f"bench.{name}")
    log.propagate = False
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    return log


def log_us(log: logging.Logger, n: int, tagged: bool) -> float:
    extra = {"bento": {"email": EMAIL}} if tagged else None

    def block(count: int) -> None:
        for _ in range(count):
            log.warning("payment failed for %s", EMAIL, extra=extra)

    block(min(2000, n))
    return median_us(block, n)


# -- the run -----------------------------------------------------------------------


def main() -> dict[str, Any]:
    import sentry_sdk
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
    from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

    from bento_track import BentoHandler, BentoMiddleware, BentoWSGIMiddleware

    out: dict[str, Any] = {"n": N}
    with EmulatorServer(port=0, requests_per_minute=100_000) as server:
        client = quiet_client(server)
        before = client.stats().enqueued

        out["asgi_bare_us"] = asgi_us(starlette_app(), N)
        ours = BentoMiddleware(
            starlette_app(), client=client, events=RULES, identify=_identify
        )
        out["asgi_bento_us"] = asgi_us(ours, N)

        out["wsgi_bare_us"] = wsgi_us(flask_app(), N)
        ours_wsgi = BentoWSGIMiddleware(
            flask_app(), client=client, events=RULES, identify=_identify
        )
        out["wsgi_bento_us"] = wsgi_us(ours_wsgi, N)
        out["wsgi_trivial_bare_us"] = wsgi_us(trivial_wsgi, N)
        out["wsgi_trivial_bento_us"] = wsgi_us(
            BentoWSGIMiddleware(
                trivial_wsgi, client=client, events=RULES, identify=_identify
            ),
            N,
        )

        out["log_null_untagged_us"] = log_us(
            logger_with("null", logging.NullHandler()), N, tagged=False
        )
        out["log_bento_untagged_us"] = log_us(
            logger_with("bento_u", BentoHandler(client=client)), N, tagged=False
        )
        out["log_queue_tagged_us"] = log_us(
            logger_with("queue", logging.handlers.QueueHandler(queue.SimpleQueue())),
            N,
            tagged=True,
        )
        out["log_bento_tagged_us"] = log_us(
            logger_with("bento_t", BentoHandler(client=client)), N, tagged=True
        )
        out["events_enqueued"] = client.stats().enqueued - before
        client.shutdown(0)

    # Sentry last: its init installs process-wide hooks.
    sentry_sdk.init(
        dsn="http://k@127.0.0.1:9/1",
        traces_sample_rate=0.0,
        default_integrations=False,
    )
    out["asgi_sentry_us"] = asgi_us(SentryAsgiMiddleware(starlette_app()), N)
    out["wsgi_sentry_us"] = wsgi_us(SentryWsgiMiddleware(flask_app()), N)

    for key in list(out):
        if key.endswith("_us"):
            out[key] = round(out[key], 2)
    out["asgi_ratio"] = round(out["asgi_bento_us"] / out["asgi_bare_us"], 3)
    out["asgi_sentry_ratio"] = round(out["asgi_sentry_us"] / out["asgi_bare_us"], 3)
    out["wsgi_ratio"] = round(out["wsgi_bento_us"] / out["wsgi_bare_us"], 3)
    out["wsgi_sentry_ratio"] = round(out["wsgi_sentry_us"] / out["wsgi_bare_us"], 3)
    out["wsgi_fixed_cost_us"] = round(
        out["wsgi_trivial_bento_us"] - out["wsgi_trivial_bare_us"], 2
    )
    out["log_untagged_ratio"] = round(
        out["log_bento_untagged_us"] / out["log_null_untagged_us"], 3
    )
    out["log_tagged_ratio"] = round(
        out["log_bento_tagged_us"] / out["log_queue_tagged_us"], 3
    )
    return out


def table(out: dict[str, Any]) -> str:
    rows = [
        (
            "ASGI request, 1 rule matched",
            "asgi_bento_us",
            "asgi_bare_us",
            "bare Starlette",
            "<= 1.15",
        ),
        (
            "ASGI request (Sentry)",
            "asgi_sentry_us",
            "asgi_bare_us",
            "bare Starlette",
            "-",
        ),
        (
            "WSGI request, 1 rule matched",
            "wsgi_bento_us",
            "wsgi_bare_us",
            "bare Flask",
            "<= 1.15",
        ),
        ("WSGI request (Sentry)", "wsgi_sentry_us", "wsgi_bare_us", "bare Flask", "-"),
        (
            "WSGI, trivial app",
            "wsgi_trivial_bento_us",
            "wsgi_trivial_bare_us",
            "bare callable",
            "-",
        ),
        (
            "log record, untagged",
            "log_bento_untagged_us",
            "log_null_untagged_us",
            "NullHandler",
            "<= 1.05",
        ),
        (
            "log record, tagged",
            "log_bento_tagged_us",
            "log_queue_tagged_us",
            "QueueHandler",
            "< 1",
        ),
    ]
    lines = [
        f"client: real Client -> emulator, request budget spent before timing "
        f"(worker asleep); {out['events_enqueued']} events built and enqueued",
        f"{'figure':32} {'ours us':>9} {'peer':>15} {'peer us':>9} {'ratio':>7} {'budget':>8}",
    ]
    for label, ours, peer, peer_name, budget in rows:
        ratio = out[ours] / out[peer]
        lines.append(
            f"{label:32} {out[ours]:9.2f} {peer_name:>15} {out[peer]:9.2f} "
            f"{ratio:7.3f} {budget:>8}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    result = main()
    print(json.dumps(result))
    print(table(result))
