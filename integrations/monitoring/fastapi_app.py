"""A FastAPI app serving `/metrics` the documented way (one mount), for the
monitoring suite: uvicorn runs it, one process. Credentials come from the
`BENTO_*` variables."""

from fastapi import FastAPI, Request
from prometheus_client import make_asgi_app
from workload import stats_of_this_process, track_some

import bento_track
from bento_track.integrations import prometheus

bento_track.init(flush_interval=0.1, strict=False)

app = FastAPI()
app.mount("/metrics", make_asgi_app(prometheus.register()))


@app.get("/track")
def track(request: Request):
    return track_some(request.query_params)


@app.get("/stats")
def stats():
    return stats_of_this_process()
