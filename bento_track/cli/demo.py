"""`bento-track demo`: the library end to end, in one command.

With no `BENTO_*` connection variables in the environment (or with
`--emulator`) it starts the embedded emulator on a free loopback port and
sends there; with all three credentials it sends to the configured Bento
account. Some set and others not is refused (a usage error naming what is
missing): quietly using the emulator then would look like a send to Bento.
It says which target it uses and why, then prints what the server received
(the emulator) or answered (Bento).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..config import ENV_VARS, Config
from ..errors import ConfigurationError

__all__ = ["choose_target", "run_demo"]

_DEMO_USERS = ["jesse@example.com", "walter@example.com", "skyler@example.com"]

_CREDENTIALS = [ENV_VARS[k] for k in ("site_uuid", "publishable_key", "secret_key")]
# BENTO_BASE_URL alone also says "send there", so it counts as a partial set.
_CONNECTION = [*_CREDENTIALS, ENV_VARS["base_url"]]


def _join(words: list[str]) -> str:
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def choose_target(
    use_emulator: bool, environ: Mapping[str, str] | None = None
) -> tuple[bool, str]:
    """(whether to use the embedded emulator, why), from `--emulator` and the
    `BENTO_*` variables. An empty variable counts as unset, as in `Config`.

    Raises:
        ConfigurationError: some connection variables are set and some
            credentials are not, and `--emulator` was not given.
    """
    env = os.environ if environ is None else environ
    present = [var for var in _CONNECTION if env.get(var)]
    if use_emulator:
        if present:
            return True, "--emulator given; BENTO_* credentials ignored"
        return True, "--emulator given"
    if not present:
        return True, "no BENTO_* credentials set"
    missing = [var for var in _CREDENTIALS if not env.get(var)]
    if missing:
        some, rest = len(present) == 1, len(missing) == 1
        raise ConfigurationError(
            f"demo: {_join(present)} {'is' if some else 'are'} set but "
            f"{_join(missing)} {'is' if rest else 'are'} not: set "
            f"{'it' if rest else 'them'} to send to Bento, or pass --emulator "
            "to use the embedded emulator"
        )
    return False, "BENTO_* credentials set"


def _require_uvicorn() -> None:
    """The embedded emulator is served by uvicorn, an extra: without it, a
    usage error saying what to install (exit 2, nothing sent), as
    `bento-track emulator` says, rather than a traceback."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "demo: the embedded emulator needs uvicorn: pip install "
            "'bento-track[emulator]' (or set BENTO_SITE_UUID, "
            "BENTO_PUBLISHABLE_KEY and BENTO_SECRET_KEY to send to Bento)"
        ) from None


@contextmanager
def _target(use_emulator: bool) -> Iterator[tuple[dict[str, Any], Any]]:
    """Connection settings, and the emulator's inspector when it is the target."""
    emulator, why = choose_target(use_emulator)
    if emulator:
        _require_uvicorn()
        from ..emulator import EmulatorServer

        with EmulatorServer(port=0) as server:
            print(f"Target: started the embedded emulator at {server.base_url} ({why})")
            print(
                f"Inbox while the demo runs: {server.url}/_emulator/ "
                "(`bento-track emulator` keeps one running)"
            )
            yield server.client_kwargs(), server.inspect
    else:
        # Resolved before printing: a malformed value stops here (exit 2),
        # and the URL shown is the checked one, never one embedding a key.
        config = Config.resolve()
        print(f"Target: Bento at {config.base_url} ({why})")
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
    """Run the demo: track `events` events from threads through a `Client`,
    call the everyday `BentoAPI` methods, then print what the emulator got.
    Sends to the emulator unless Bento credentials are set and `use_emulator`
    is false (see `choose_target`). Returns the exit status."""
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
