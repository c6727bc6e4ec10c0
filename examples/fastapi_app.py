"""FastAPI + bento_track: a rule per route template, identity from a header,
the `identity` dependency in a view, a flush when the app shuts down.

Run it (no Bento account needed; with BENTO_* credentials set it sends to Bento):

    python examples/fastapi_app.py

then, in another shell:

    curl -X POST -H 'x-user-email: ann@example.com' http://127.0.0.1:8000/orders/7
    curl -H 'x-user-email: ann@example.com' http://127.0.0.1:8000/me

and open the inbox URL it printed to see the events.
"""

import os

import uvicorn
from fastapi import Depends, FastAPI

import bento_track
from bento_track import BentoMiddleware
from bento_track.integrations.fastapi import identity, lifespan

app = FastAPI(lifespan=lifespan)  # flushes every client at shutdown
app.add_middleware(
    BentoMiddleware,
    events={"POST /orders/{order_id}": "order.created"},
    identify=lambda info: info.header("x-user-email"),
)


@app.post("/orders/{order_id}")
async def create_order(order_id: int) -> dict[str, int]:
    return {"order": order_id}


@app.get("/me")
async def me(email: str | None = Depends(identity)) -> dict[str, str | None]:
    if email:
        bento_track.track("profile.viewed", fields={"plan": "pro"})
    return {"email": email}


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
