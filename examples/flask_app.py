"""Flask + bento_track: `BentoTrack(app, events=..., identify=...)`, the
identity from the session, rules by URL rule and by endpoint.

Run it (no Bento account needed; with BENTO_* credentials set it sends to Bento):

    python examples/flask_app.py

then, in another shell:

    curl -c jar -X POST -d email=ann@example.com http://127.0.0.1:8000/login
    curl -b jar -X POST http://127.0.0.1:8000/items/3
    curl -b jar -X POST http://127.0.0.1:8000/logout

and open the inbox URL it printed to see the events.
"""

import os

from flask import Flask, request, session

import bento_track
from bento_track.integrations.flask import BentoTrack

app = Flask(__name__)
app.secret_key = os.environ.get("SECRET_KEY", "change-me")

BentoTrack(
    app,
    events={
        "POST /login": "user.logged_in",  # identity found after the view
        "POST /logout": "user.logged_out",  # identity found before the view
        "POST /items/<int:item_id>": "item.updated",  # a URL rule
        "POST export": "report.exported",  # an endpoint name
    },
    identify=lambda: session.get("email"),  # no arguments, in the request context
)


@app.post("/login")
def login():
    session["email"] = request.form["email"]
    return "logged in\n"


@app.post("/logout")
def logout():
    session.pop("email", None)
    return "logged out\n"


@app.post("/items/<int:item_id>")
def update_item(item_id):
    bento_track.track("item.viewed", details={"item": item_id})  # no email needed
    return f"item {item_id} saved\n"


@app.post("/export", endpoint="export")
def export_report():
    return "exported\n"


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
    app.run(host="127.0.0.1", port=port)
