"""Capture benchmark: bento_track's middlewares and log handler next to the
bare app, Sentry's middlewares and the stdlib handlers, in one run.

Run: `.venv/bin/python -m benchmarks.bench_capture` (env `N` requests or
records per figure, default 20000; `ABLATE=1` adds our middlewares with less
to do, see `ABLATIONS`). Prints one JSON line, then a table.

1. ASGI: us/request of a minimal Starlette app (the peer script's app) called
   straight through ASGI, bare / under `BentoMiddleware` with one rule that
   matches every request (identity from a header) / under Sentry's ASGI
   middleware. Budget: what ours adds to the bare app <= 1/10 of what
   Sentry's adds.
2. WSGI: the same with a minimal Flask app, bare / `BentoWSGIMiddleware` /
   Sentry's WSGI middleware (same budget); and the fixed cost over a trivial
   WSGI callable, in us.
3. Logging: `logger.warning(...)` through `BentoHandler`: untagged vs a
   `NullHandler` (budget <= 1.05x), tagged vs a stdlib `QueueHandler` feeding
   a running `QueueListener` (budget: no dearer).

Figures that are compared are measured in alternation (`compare`): REPS
rounds, each running every contender for N/REPS operations, medians kept, so
a drift of the machine's speed during the run cannot favour either side.
`floor.py` adds, for reference, the least any middleware doing this job can
cost (a contextvar, a status wrapper, a dict lookup, a header read, a tuple
appended): the part of the budget no implementation can go below here.

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

from .floor import FloorASGI, FloorWSGI

N = int(os.environ.get("N", "20000"))
REPS = int(os.environ.get("REPS", "9"))
#: also measure our middlewares with less to do (what each part costs)
ABLATE = os.environ.get("ABLATE", "") not in ("", "0")
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


def compare(blocks: dict[str, Callable[[int], None]], n: int) -> dict[str, float]:
    """Median us per operation of each block, measured in alternation: REPS
    rounds, each running every block for n/REPS operations in turn, so a
    drift of the machine's speed lands on all of them alike."""
    per: dict[str, list[float]] = {name: [] for name in blocks}
    count = max(1, n // REPS)
    for run in blocks.values():
        run(min(count, 2000))  # warm-up
    for _ in range(REPS):
        for name, run in blocks.items():
            t0 = time.perf_counter_ns()
            run(count)
            per[name].append((time.perf_counter_ns() - t0) / count / 1000)
    return {name: statistics.median(times) for name, times in per.items()}


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


#: the event loop every ASGI block runs on (closed when the run ends)
LOOP = asyncio.new_event_loop()


def asgi_blocks(apps: dict[str, Any]) -> dict[str, Callable[[int], None]]:
    """A block runner per ASGI app: `count` requests on one event loop."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    loop = LOOP

    def runner(app: Any) -> Callable[[int], None]:
        async def block(count: int) -> None:
            for _ in range(count):
                await app(dict(SCOPE), receive, send)

        return lambda count: loop.run_until_complete(block(count))

    return {name: runner(app) for name, app in apps.items()}


#: with ABLATE=1, our middlewares also run with less to do (ASGI and WSGI
#: alike): no rule (`identify=` never asked), a rule for the method that never
#: matches (`identify=` asked, no event), no request facts, and `identify=`
#: answering without reading a header
ABLATIONS: dict[str, dict[str, Any]] = {
    "no_rule": {"identify": _identify},
    "no_match": {"events": {"POST /elsewhere": "x"}, "identify": _identify},
    "no_facts": {"events": RULES, "identify": _identify, "facts": False},
    "constant_identify": {"events": RULES, "identify": lambda info: EMAIL},
}


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


def wsgi_block(app: Any) -> Callable[[int], None]:
    """`count` requests through a WSGI app, body read and closed as a server does."""

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

    return block


# -- logging -----------------------------------------------------------------------


def logger_with(name: str, handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(f"bench.{name}")
    log.propagate = False
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    return log


def log_block(log: logging.Logger, tagged: bool) -> Callable[[int], None]:
    extra = {"bento": {"email": EMAIL}} if tagged else None

    def block(count: int) -> None:
        for _ in range(count):
            log.warning("payment failed for %s", EMAIL, extra=extra)

    return block


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

        asgi_apps = {
            "bare": starlette_app(),
            "bento": BentoMiddleware(
                starlette_app(), client=client, events=RULES, identify=_identify
            ),
            "floor": FloorASGI(starlette_app()),
        }
        wsgi_blocks = {
            "bare": wsgi_block(flask_app()),
            "bento": wsgi_block(
                BentoWSGIMiddleware(
                    flask_app(), client=client, events=RULES, identify=_identify
                )
            ),
            "floor": wsgi_block(FloorWSGI(flask_app())),
            "trivial_bare": wsgi_block(trivial_wsgi),
            "trivial_bento": wsgi_block(
                BentoWSGIMiddleware(
                    trivial_wsgi, client=client, events=RULES, identify=_identify
                )
            ),
        }
        if ABLATE:
            for variant, options in ABLATIONS.items():
                asgi_apps[variant] = BentoMiddleware(
                    starlette_app(), client=client, **options
                )
                wsgi_blocks[variant] = wsgi_block(
                    BentoWSGIMiddleware(flask_app(), client=client, **options)
                )

        asgi = compare(asgi_blocks(asgi_apps), N)
        for name, value in asgi.items():
            out[f"asgi_{name}_us"] = value

        wsgi = compare(wsgi_blocks, N)
        for name, value in wsgi.items():
            out[f"wsgi_{name}_us"] = value

        # The stdlib's way to log without blocking: a QueueHandler whose
        # QueueListener thread runs (and drains) while it is measured.
        listener = logging.handlers.QueueListener(
            log_queue := queue.SimpleQueue(), logging.NullHandler()
        )
        listener.start()
        logs = compare(
            {
                "null_untagged": log_block(
                    logger_with("null", logging.NullHandler()), tagged=False
                ),
                "bento_untagged": log_block(
                    logger_with("bento_u", BentoHandler(client=client)), tagged=False
                ),
                "queue_tagged": log_block(
                    logger_with("queue", logging.handlers.QueueHandler(log_queue)),
                    tagged=True,
                ),
                "bento_tagged": log_block(
                    logger_with("bento_t", BentoHandler(client=client)), tagged=True
                ),
            },
            N,
        )
        listener.stop()
        for name, value in logs.items():
            kind, tag = name.split("_")
            out[f"log_{kind}_{tag}_us"] = value
        out["events_enqueued"] = client.stats().enqueued - before
        client.shutdown(0)

    # Sentry last: its init installs process-wide hooks. Shown for reference.
    sentry_sdk.init(
        dsn="http://k@127.0.0.1:9/1",
        traces_sample_rate=0.0,
        default_integrations=False,
    )
    sentry = compare(
        {
            "asgi": asgi_blocks({"a": SentryAsgiMiddleware(starlette_app())})["a"],
            "wsgi": wsgi_block(SentryWsgiMiddleware(flask_app())),
        },
        N,
    )
    out["asgi_sentry_us"] = sentry["asgi"]
    out["wsgi_sentry_us"] = sentry["wsgi"]

    for key in list(out):
        if key.endswith("_us"):
            out[key] = round(out[key], 2)
    out["asgi_ratio"] = round(out["asgi_bento_us"] / out["asgi_bare_us"], 3)
    out["asgi_sentry_ratio"] = round(out["asgi_sentry_us"] / out["asgi_bare_us"], 3)
    out["asgi_floor_ratio"] = round(out["asgi_floor_us"] / out["asgi_bare_us"], 3)
    out["wsgi_floor_ratio"] = round(out["wsgi_floor_us"] / out["wsgi_bare_us"], 3)
    out["wsgi_ratio"] = round(out["wsgi_bento_us"] / out["wsgi_bare_us"], 3)
    out["wsgi_sentry_ratio"] = round(out["wsgi_sentry_us"] / out["wsgi_bare_us"], 3)
    for kind in ("asgi", "wsgi"):
        # The budget's figure: what our middleware adds over what Sentry's adds.
        ours = out[f"{kind}_bento_us"] - out[f"{kind}_bare_us"]
        theirs = out[f"{kind}_sentry_us"] - out[f"{kind}_bare_us"]
        out[f"{kind}_added_us"] = round(ours, 2)
        out[f"{kind}_sentry_added_us"] = round(theirs, 2)
        out[f"{kind}_added_ratio"] = round(ours / theirs, 4)
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
            "-",
        ),
        (
            "ASGI, least possible middleware",
            "asgi_floor_us",
            "asgi_bare_us",
            "bare Starlette",
            "-",
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
            "-",
        ),
        (
            "WSGI, least possible middleware",
            "wsgi_floor_us",
            "wsgi_bare_us",
            "bare Flask",
            "-",
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
            "QueueHandler+L",
            "<= 1",
        ),
        (
            "ASGI added, ours vs Sentry's",
            "asgi_added_us",
            "asgi_sentry_added_us",
            "Sentry added",
            "<= 0.1",
        ),
        (
            "WSGI added, ours vs Sentry's",
            "wsgi_added_us",
            "wsgi_sentry_added_us",
            "Sentry added",
            "<= 0.1",
        ),
    ]
    for kind, peer_name in (("asgi", "bare Starlette"), ("wsgi", "bare Flask")):
        for variant in ABLATIONS:
            if f"{kind}_{variant}_us" in out:
                rows.append(
                    (
                        f"{kind.upper()}, {variant.replace('_', ' ')}",
                        f"{kind}_{variant}_us",
                        f"{kind}_bare_us",
                        peer_name,
                        "-",
                    )
                )
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
    try:
        result = main()
    finally:
        LOOP.close()
    print(json.dumps(result))
    print(table(result))
