"""A Celery app wired with `install(app)`, and the web app that enqueues its
tasks (a Starlette app under `BentoMiddleware`, identity from a header).

The worker: `celery -A shop_tasks worker --pool prefork`; the web app:
`uvicorn shop_tasks:web`. Both read the broker from `CELERY_BROKER_URL`,
Bento's credentials from the `BENTO_*` variables. The default client is made
here, at import, so in the worker it is made before the pool forks: each
prefork child must get a delivery worker of its own."""

import os
import time
from pathlib import Path

from celery import Celery
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import bento_track
from bento_track import BentoMiddleware
from bento_track.integrations.celery import install

bento_track.init(flush_interval=60)  # only the shutdown flush delivers

app = Celery(
    "shop_tasks",
    broker=os.environ["CELERY_BROKER_URL"],
    backend=os.environ["CELERY_RESULT_BACKEND"],
)
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_acks_late=False,
    worker_prefetch_multiplier=1,
)
install(app)


@app.task
def record(tag, bind_after=None):
    """Track without an email; True when an identity was there to use. Then,
    maybe, bind another identity, which the next task must not inherit."""
    tracked = bento_track.track("task.ran", details={"tag": tag, "pid": os.getpid()})
    if bind_after:
        bento_track.identify(bind_after)
    return {"tracked": tracked is not None, "pid": os.getpid()}


@app.task
def held(tag):
    folder = Path(os.environ["HOLD_DIR"])
    (folder / "entered").touch()
    deadline = time.monotonic() + 20
    while not (folder / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    bento_track.track("task.held", details={"tag": tag})
    return True


async def enqueue(request: Request) -> JSONResponse:
    """Enqueue `record` (or `held`); the request's identity goes along."""
    tag = request.path_params["tag"]
    if tag.startswith("held"):
        result = held.delay(tag)
    else:
        result = record.delay(tag, bind_after=request.query_params.get("bind"))
    return JSONResponse({"id": result.id})


web = Starlette(routes=[Route("/enqueue/{tag}", enqueue, methods=["POST"])])
web.add_middleware(BentoMiddleware, identify=lambda info: info.header("x-user-email"))
