"""Starlette + bento_track: a rule per route template, identity from a header.

Run it (no Bento account needed; with BENTO_* credentials set it sends to Bento):

    python examples/starlette_app.py

then, in another shell:

    curl -X POST -H 'x-user-email: ann@example.com' http://127.0.0.1:8000/signup/pro
    curl -H 'x-user-email: ann@example.com' http://127.0.0.1:8000/welcome

and open the inbox URL it printed to see the events.
"""

import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import bento_track
from bento_track import BentoMiddleware


async def signup(request: Request) -> JSONResponse:
    return JSONResponse({"plan": request.path_params["plan"]}, status_code=201)


async def welcome(request: Request) -> JSONResponse:
    # No email: the request's identity (from identify= below) is used.
    bento_track.track("welcome.viewed", details={"step": 1})
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/signup/{plan}", signup, methods=["POST"]),
        Route("/welcome", welcome),
    ]
)
app.add_middleware(
    BentoMiddleware,
    events={"POST /signup/{plan}": "account.signup"},
    identify=lambda info: info.header("x-user-email"),
)


def use_embedded_emulator() -> None:
    """No BENTO_* credentials: start the embedded emulator and send there."""
    if os.environ.get("BENTO_SECRET_KEY"):
        return
    from bento_track.emulator import EmulatorServer

    server = EmulatorServer(port=0).start()
    os.environ.update(
        BENTO_SITE_UUID=server.site_uuid,
        BENTO_PUBLISHABLE_KEY=server.publishable_key,
        BENTO_SECRET_KEY=server.secret_key,
        BENTO_BASE_URL=server.base_url,
    )
    print(f"Emulator inbox: {server.url}/_emulator/", flush=True)


if __name__ == "__main__":
    use_embedded_emulator()
    bento_track.init(flush_interval=1)  # show events in the inbox within a second
    port = int(os.environ.get("PORT", "8000"))
    print(f"App: http://127.0.0.1:{port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
