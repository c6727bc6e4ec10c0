"""The logging handler: log records tagged with `extra={"bento": ...}` become
Bento events; every other record costs almost nothing.

Run it (no Bento account needed; with BENTO_* credentials set it sends to Bento):

    python examples/logging_handler.py
"""

import logging
import os

import bento_track
from bento_track import BentoHandler


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


def main():
    server = use_embedded_emulator()
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # quiet delivery requests
    logging.getLogger().addHandler(BentoHandler())  # forwards tagged records only
    log = logging.getLogger("billing")

    log.info("nightly run started")  # untagged: not an event
    # A tag with a type and an email:
    log.warning(
        "payment failed for invoice %s",
        "INV-42",
        extra={"bento": {"type": "payment.failed", "email": "ann@example.com"}},
    )
    # A tag naming the type; the email from the current identity:
    bento_track.identify("bob@example.com")
    log.info("plan upgraded", extra={"bento": "plan.upgraded"})

    delivered = bento_track.flush(10)
    print(f"flushed: {delivered}")
    if server is not None:
        for event in server.inspect.events():
            print(f"received: {event['type']} {event['email']} {event.get('details')}")


if __name__ == "__main__":
    main()
