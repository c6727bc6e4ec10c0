"""Celery + bento_track: `install(app)` makes the identity of whoever
enqueued a task travel with it, so `track()` inside the task needs no email.

Run it (no Bento account and no broker needed: an in-memory broker and a
worker thread; with BENTO_* credentials set it sends to Bento):

    python examples/celery_app.py

With a real broker, run the worker the usual way from this folder:
`CELERY_BROKER_URL=redis://localhost:6379/0 celery -A celery_app worker`.
"""

import contextvars
import os

from celery import Celery

import bento_track
from bento_track.integrations.celery import install

app = Celery(
    "example",
    broker=os.environ.get("CELERY_BROKER_URL", "memory://localhost/"),
    backend=os.environ.get("CELERY_RESULT_BACKEND", "cache+memory://"),
)
if app.conf.broker_url.startswith("memory://"):
    app.conf.broker_transport_options = {"polling_interval": 0.05}
install(app)


@app.task
def send_receipt(order_id):
    # No email: the identity of the request that enqueued this task.
    event = bento_track.track("receipt.sent", details={"order": order_id})
    return event is not None


def use_embedded_emulator():
    """No BENTO_* credentials: start the embedded emulator and send there."""
    if os.environ.get("BENTO_SECRET_KEY"):
        return None
    from bento_track.emulator import EmulatorServer

    server = EmulatorServer(port=0).start()
    os.environ.update(
        BENTO_SITE_UUID=server.site_uuid,
        BENTO_PUBLISHABLE_KEY=server.publishable_key,
        BENTO_SECRET_KEY=server.secret_key,
        BENTO_BASE_URL=server.base_url,
    )
    print(f"Emulator inbox: {server.url}/_emulator/", flush=True)
    return server


def a_request(email, order_id):
    """What a web request does: its middleware identifies the user, and the
    view enqueues a task (each request in a context of its own)."""

    def view():
        if email:
            bento_track.identify(email)
        return send_receipt.delay(order_id)

    return contextvars.copy_context().run(view)


if __name__ == "__main__":
    from celery.contrib.testing.worker import start_worker

    server = use_embedded_emulator()
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        identified = a_request("ann@example.com", 7).get(timeout=10)
        anonymous = a_request(None, 8).get(timeout=10)
    print(f"task enqueued by ann@example.com tracked: {identified}")
    print(f"task enqueued anonymously tracked: {anonymous} (no identity to use)")
    bento_track.flush(10)
    if server is not None:
        for event in server.inspect.events():
            print(f"received: {event['type']} {event['email']} {event.get('details')}")
