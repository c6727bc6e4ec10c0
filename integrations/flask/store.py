"""A Flask app wired only with `BentoTrack(app, events=..., identify=...)`;
the suite serves it with gunicorn (2 workers). Identity is the session's
email; credentials come from the `BENTO_*` variables."""

import os
import time
from pathlib import Path

from flask import Flask, request, session

import bento_track
from bento_track.integrations.flask import BentoTrack

app = Flask(__name__)
app.secret_key = "integration-tests-only"
# Long enough that only the exit flush delivers: SIGTERM must lose nothing.
app.config["BENTO_TRACK"] = {"flush_interval": 60}

BentoTrack(
    app,
    events={
        "POST /login": "user.logged_in",
        "POST /logout": "user.logged_out",
        "POST /items/<int:item_id>": "item.updated",  # a URL rule
        "POST checkout": "order.placed",  # an endpoint
    },
    identify=lambda: session.get("email"),
)


@app.post("/login")
def login():
    session["email"] = request.form["email"]
    return "in"


@app.post("/logout")
def logout():
    session.pop("email", None)
    return "out"


@app.post("/items/<int:item_id>")
def update_item(item_id):
    return {"item": item_id, "pid": os.getpid()}


@app.post("/checkout", endpoint="checkout")
def place_order():
    return "placed"


@app.get("/whoami")
def whoami():
    # An explicit track() with no email: the request's identity.
    bento_track.track("page.viewed", details={"pid": os.getpid()})
    return str(os.getpid())


@app.get("/held")
def held():
    folder = Path(os.environ["HOLD_DIR"])
    (folder / "entered").touch()
    deadline = time.monotonic() + 20
    while not (folder / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    bento_track.track("report.exported", details={"rows": 3, "pid": os.getpid()})
    return "exported"
