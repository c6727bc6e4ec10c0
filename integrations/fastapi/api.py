"""A FastAPI app wired as the README says: `BentoMiddleware` with a route
template rule and `identify=`, the `identity` dependency, the flushing
lifespan. The suite serves it with uvicorn; credentials come from the
`BENTO_*` variables, and the default client flushes every 60 s only (SIGTERM
must lose nothing)."""

import asyncio
import os
from pathlib import Path

from fastapi import Depends, FastAPI

import bento_track
from bento_track import BentoMiddleware
from bento_track.integrations.fastapi import identity, lifespan, require_identity

bento_track.init(flush_interval=60)

app = FastAPI(lifespan=lifespan)
app.add_middleware(
    BentoMiddleware,
    events={
        "POST /orders/{order_id}": "order.created",
        "DELETE /orders/{order_id}": "order.cancelled",
    },
    identify=lambda info: info.header("x-user-email"),
)


@app.post("/orders/{order_id}")
async def create_order(order_id: int):
    return {"order": order_id}


@app.delete("/orders/{order_id}")
def cancel_order(order_id: int):  # a sync view (thread pool)
    bento_track.track("refund.started", details={"order": order_id})
    return {"cancelled": order_id}


@app.get("/me")
async def me(email: str | None = Depends(identity)):
    return {"email": email}


@app.get("/account")
async def account(email: str = Depends(require_identity)):
    bento_track.track("account.viewed", fields={"plan": "pro"})
    return {"email": email}


@app.get("/held")
async def held():
    folder = Path(os.environ["HOLD_DIR"])
    (folder / "entered").touch()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not (folder / "release").exists() and loop.time() < deadline:
        await asyncio.sleep(0.01)
    bento_track.track("report.exported", details={"rows": 3})
    return {"exported": True}
