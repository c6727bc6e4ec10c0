"""A Flask app serving `/metrics` the documented way, for the monitoring
suite: gunicorn runs it with 2 workers in prometheus_client's multiprocess
mode (`PROMETHEUS_MULTIPROC_DIR`, `gunicorn.conf.py`). `STORE` names the
store (empty: each worker's memory); `PUBLISH_INTERVAL` how often a worker
publishes its figures. Credentials come from the `BENTO_*` variables."""

import os

from flask import Flask, request
from prometheus_client import make_wsgi_app
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from workload import hold, stats_of_this_process, track_some

import bento_track
from bento_track.integrations import prometheus

bento_track.init(
    flush_interval=0.1, strict=False, store=os.environ.get("STORE") or None
)

app = Flask(__name__)
# The documented line (with a short publication interval for the tests).
app.wsgi_app = DispatcherMiddleware(
    app.wsgi_app,
    {
        "/metrics": make_wsgi_app(
            prometheus.register(interval=float(os.environ["PUBLISH_INTERVAL"]))
        )
    },
)


@app.get("/track")
def track():
    return track_some(request.args)


@app.get("/hold")
def held():
    return hold(request.args["dir"])


@app.get("/stats")
def stats():
    return stats_of_this_process()
