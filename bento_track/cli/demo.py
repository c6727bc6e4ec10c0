"""`bento-track demo`: the library end to end, in one command.

With no Bento credentials in the environment (or with `--emulator`) it starts
the embedded emulator on a free loopback port and sends there; with
credentials it sends to the configured Bento account. Then it prints what the
server received (the emulator) or answered (Bento).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..config import ENV_VARS

__all__ = ["run_demo"]

_DEMO_USERS = ["jesse@example.com", "walter@example.com", "skyler@example.com"]


def _has_credentials() -> bool:
    return all(
        os.environ.get(ENV_VARS[k])
        for k in ("site_uuid", "publishable_key", "secret_key")
    )


@contextmanager
def _target(use_emulator: bool) -> Iterator[tuple[dict[str, Any], Any]]:
    """Connection settings, and the emulator's inspector when it is the target."""
    if use_emulator or not _has_credentials():
        from ..emulator import EmulatorServer

        with EmulatorServer(port=0) as server:
            print(
                f"No Bento credentials set: started the embedded emulator at {server.base_url}"
            )
            print(
                f"Inbox while the demo runs: {server.url}/_emulator/ "
                "(`bento-track emulator` keeps one running)"
            )
            yield server.client_kwargs(), server.inspect
    else:
        print(
            f"Sending to Bento at {os.environ.get('BENTO_BASE_URL') or 'https://app.bentonow.com/api/v1'}"
        )
        yield {}, None


def _section(title: str) -> None:
    print(f"\n== {title}")


def _track_in_threads(client: Any, events: int) -> None:
    """What a web app does: several request threads tracking at once."""

    def worker(offset: int) -> None:
        for i in range(offset, events, 3):
            client.track(
                "demo.page_viewed",
                email=_DEMO_USERS[i % len(_DEMO_USERS)],
                fields={"plan": "pro" if i % 2 else "free"},
                details={"page": f"/docs/{i}", "seq": i},
            )

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _web_app_requests(client: Any) -> None:
    """A Starlette app under BentoMiddleware: a rule turns POST /signup into an event."""
    import asyncio

    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ..asgi import BentoMiddleware
    from ..client import identify

    async def signup(request: Request) -> JSONResponse:
        body = await request.json()
        identify(body["email"])  # later events in this request carry the email
        return JSONResponse({"ok": True}, status_code=201)

    app = BentoMiddleware(
        Starlette(routes=[Route("/signup", signup, methods=["POST"])]),
        client=client,
        events={"POST /signup": "account.signup"},
        status="2xx",
    )

    async def drive() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://demo"
        ) as http:
            for email in ("hank@example.com", "marie@example.com"):
                await http.post("/signup", json={"email": email})

    asyncio.run(drive())


def _print_events(events: list[dict[str, Any]], per_type: int = 3) -> None:
    """A few rows of each event type, then how many of each arrived."""
    counts: dict[str, int] = {}
    print(f"{'type':<22} {'email':<22} {'fields':<18} details")
    for event in events:
        seen = counts.get(event["type"], 0)
        counts[event["type"]] = seen + 1
        if seen >= per_type:
            continue
        fields = ",".join(f"{k}={v}" for k, v in (event.get("fields") or {}).items())
        details = event.get("details") or {}
        shown = ", ".join(f"{k}={v}" for k, v in list(details.items())[:3])
        print(f"{event['type']:<22} {event['email']:<22} {fields:<18} {shown}")
    print("by type: " + ", ".join(f"{t} x{n}" for t, n in counts.items()))


def run_demo(*, use_emulator: bool = False, events: int = 25) -> int:
    from .. import events as ev
    from ..api import BentoAPI
    from ..client import Client
    from ..models import Email

    with _target(use_emulator) as (settings, inspect):
        _section(
            "1. Background delivery: track() from 3 threads, batched by the worker"
        )
        client = Client(**settings, flush_interval=0.2)
        _track_in_threads(client, events)
        _web_app_requests(client)
        delivered = client.flush(timeout=10)
        stats = client.stats()
        print(
            f"flush delivered everything: {delivered}; "
            f"{stats.accepted} events accepted in {stats.requests} request(s)"
        )
        client.shutdown()

        _section("2. The everyday API: reserved events, subscribers, email, tags")
        with BentoAPI(**settings) as api:
            result = api.batch_events(
                [
                    ev.purchase(
                        "jesse@example.com",
                        key="order-1001",
                        amount_cents=4999,
                        currency="USD",
                    ),
                    ev.tag("walter@example.com", "customer"),
                ]
            )
            print(f"batch_events: results={result.results} failed={result.failed}")
            people = [
                {"email": f"user{i}@example.com", "first_name": f"User {i}"}
                for i in range(1, 4)
            ]
            print(
                f"import_subscribers: {api.import_subscribers(people).results} accepted"
            )
            api.create_tag("demo")
            print(f"tags: {[t.name for t in api.get_tags()]}")
            sent = api.send_emails(
                [
                    Email(
                        to="jesse@example.com",
                        from_="hello@example.com",
                        subject="Welcome",
                        html_body="<p>Hi {{ name }}</p>",
                        personalizations={"name": "Jesse"},
                    )
                ]
            )
            print(f"send_emails: {sent.results} queued")

        if inspect is not None:
            _section("What the emulator received")
            received = inspect.events()
            print(f"{len(received)} events:")
            _print_events(received)
            print(
                f"{len(inspect.subscribers())} subscribers, {len(inspect.emails())} email(s)"
            )
            counts = inspect.request_counts()
            print(f"requests by status: {counts}")
    return 0
