"""A Starlette app wrapped in `BentoMiddleware` exactly as the README shows
(no lifespan of its own), served by each ASGI server setup of the SIGTERM
suite. Credentials come from the `BENTO_*` variables; the client flushes
every 60 s only, so what arrives after SIGTERM is what shutdown delivered,
and its `shutdown_timeout` is `SHOP_SHUTDOWN_TIMEOUT` seconds.

`/held` waits (with a deadline) for a file, so a request can be in flight
when SIGTERM arrives (see `InFlight` in the integrations' conftest)."""

import asyncio
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import bento_track
from bento_track import BentoMiddleware

bento_track.init(
    flush_interval=60,
    shutdown_timeout=float(os.environ.get("SHOP_SHUTDOWN_TIMEOUT", "2")),
)


async def signup(request: Request) -> JSONResponse:
    return JSONResponse({"plan": request.path_params["plan"]}, status_code=201)


async def held(request: Request) -> JSONResponse:
    folder = Path(os.environ["HOLD_DIR"])
    (folder / "entered").touch()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not (folder / "release").exists() and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return JSONResponse({"held": True})


async def ping(request: Request) -> JSONResponse:
    return JSONResponse({"pid": os.getpid()})


app = Starlette(
    routes=[
        Route("/signup/{plan}", signup, methods=["POST"]),
        Route("/held", held, methods=["POST"]),
        Route("/ping", ping),
    ]
)
app.add_middleware(
    BentoMiddleware,
    events={"POST /signup/{plan}": "account.signup", "POST /held": "report.held"},
    identify=lambda info: info.header("x-user-email"),
)
