"""Transactional email through Bento's `/batch/emails`, with Liquid-style
personalizations, using the request/response API (`BentoAPI`).

Run it (no Bento account needed; with BENTO_* credentials set it sends to
Bento, where `from_` must be an author of your account):

    python examples/transactional_email.py
"""

import os

from bento_track.api import BentoAPI
from bento_track.models import Email


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
    sender = os.environ.get("BENTO_FROM", "hello@example.com")
    receipt = Email(
        to="ann@example.com",
        from_=sender,
        subject="Your receipt for order {{ order }}",
        html_body="<p>Hi {{ name }}, thanks for order {{ order }}.</p>",
        transactional=True,  # sent even if Ann unsubscribed from marketing
        personalizations={"name": "Ann", "order": "A-1001"},
    )
    with BentoAPI() as api:
        result = api.send_emails([receipt])
    print(f"queued: {result.results}, failed: {result.failed}")
    if server is not None:
        for email in server.inspect.emails():
            print(f"received: to={email['to']} subject={email['subject']!r}")


if __name__ == "__main__":
    main()
