"""The Bento-compatible `/api/v1` endpoints.

One ASGI callable serves every `/api/v1` path so the checks run in Bento's
order for every request, known path or not: faults, body size (413),
User-Agent (403), Basic auth and `site_uuid` (401), rate limit (429), routing
(404/405), JSON (400), body rules (400/422), then the handler. Every request
is logged. No body, however malformed, makes it answer 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from .faults import Fault
from .guards import EdgeRefusal, basic_auth_ok, read_body, user_agent_blocked
from .state import EmulatorState
from .validation import (
    BodyError,
    is_email,
    parse_body,
    validate_commands,
    validate_emails,
    validate_events,
    validate_subscribers,
)

__all__ = ["PREFIX", "ConnectionDropped", "EmulatedAPI"]

PREFIX = "/api/v1"
_DROPPED = object()  # answer by closing the connection
_ABANDONED = object()  # close it and leave no trace (reset or shutdown came first)
_SLOW_TICK = 0.05  # how often a slow answer checks for reset or shutdown


class ConnectionDropped(Exception):
    """Raised in-process (no socket to close) for a `drop` fault."""


@dataclass
class Call:
    """One API request, parsed: what handlers get."""

    state: EmulatorState
    request: Request
    body: dict[str, Any]
    seq: int


Handler = Callable[[Call], Awaitable[Response]]


def _json(status: int, doc: Any, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(doc, status_code=status, headers=headers)


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


# -- handlers -------------------------------------------------------------------


async def batch_events(call: Call) -> Response:
    """`POST /batch/events`: validate the events (400 for any bad one, or a
    test's rejection), store them and update their subscribers; 200 with
    the count."""
    events = validate_events(call.body, call.state.faults.rejected)
    call.state.store.add_events(events, call.seq)
    return _json(200, {"results": len(events), "failed": 0})


async def batch_subscribers(call: Call) -> Response:
    """`POST /batch/subscribers`: validate the rows, create or update the
    subscribers; 200 with the count."""
    rows = validate_subscribers(call.body)
    call.state.store.upsert_subscribers(rows)
    return _json(200, {"results": len(rows), "failed": 0})


async def batch_emails(call: Call) -> Response:
    """`POST /batch/emails`: validate the emails (422 for an author the
    account does not have) and store them; 200 with the count."""
    emails = validate_emails(call.body, call.state.settings.author_allowed)
    call.state.store.add_emails(emails, call.seq)
    return _json(200, {"results": len(emails)})


async def get_tags(call: Call) -> Response:
    """`GET /fetch/tags`: every tag, as JSON:API resources."""
    return _json(200, {"data": call.state.store.tags(call.state.settings.site_uuid)})


def _named(call: Call, outer: str, inner: str) -> str:
    item = call.body.get(outer)
    value = item.get(inner) if isinstance(item, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise BodyError(
            400,
            {"errors": [{"field": f"{outer}.{inner}", "message": "can't be blank"}]},
        )
    return value.strip()


async def create_tag(call: Call) -> Response:
    """`POST /fetch/tags`: create the tag (400 for a blank name); 201 with
    it, the existing one if the name is taken."""
    name = _named(call, "tag", "name")
    tag = call.state.store.create_tag(name, call.state.settings.site_uuid)
    return _json(201, {"data": tag})


async def get_fields(call: Call) -> Response:
    """`GET /fetch/fields`: every custom field, as JSON:API resources."""
    return _json(200, {"data": call.state.store.fields()})


async def create_field(call: Call) -> Response:
    """`POST /fetch/fields`: create the custom field (400 for a blank key);
    201 with it, the existing one if the key is taken."""
    key = _named(call, "field", "key")
    return _json(201, {"data": call.state.store.create_field(key)})


async def get_subscriber(call: Call) -> Response:
    """`GET /fetch/subscribers?email=...` (or `uuid=`): 200 with the
    subscriber, `data: null` if unknown; 400 with neither parameter."""
    params = call.request.query_params
    email, uuid = params.get("email"), params.get("uuid")
    if email:
        found = call.state.store.find_subscriber(email=email)
    elif uuid:
        found = call.state.store.find_subscriber(uuid=uuid)
    else:
        return _error(400, "email or uuid is required")
    return _json(200, {"data": found})


async def create_subscriber(call: Call) -> Response:
    """`POST /fetch/subscribers`: create the subscriber (400 for a blank or
    malformed email); 201 with it, the existing one if already there."""
    email = _named(call, "subscriber", "email")
    if not is_email(email):
        raise BodyError(
            400, {"errors": [{"field": "subscriber.email", "message": "is invalid"}]}
        )
    return _json(201, {"data": call.state.store.create_subscriber(email)})


async def commands(call: Call) -> Response:
    """`POST /fetch/commands`: validate the commands, log them and apply
    them to the subscribers; 200 with the count."""
    items = validate_commands(call.body)
    call.state.store.add_commands(items, call.seq)
    return _json(200, {"results": len(items)})


async def validation(call: Call) -> Response:
    """`POST /experimental/validation`: whether the email (query parameter,
    else body) is well formed, as `{"valid": bool}`."""
    email = call.request.query_params.get("email") or call.body.get("email")
    return _json(200, {"valid": is_email(email)})


async def site_stats(call: Call) -> Response:
    """`GET /stats/site`: counts of subscribers, subscribed and
    unsubscribed."""
    people = call.state.store.list("subscribers")
    out = sum(1 for p in people if p.get("unsubscribed_at"))
    return _json(
        200,
        {
            "user_count": len(people),
            "subscriber_count": len(people) - out,
            "unsubscriber_count": out,
        },
    )


ROUTES: dict[str, dict[str, Handler]] = {
    "/batch/events": {"POST": batch_events},
    "/batch/subscribers": {"POST": batch_subscribers},
    "/batch/emails": {"POST": batch_emails},
    "/fetch/tags": {"GET": get_tags, "POST": create_tag},
    "/fetch/fields": {"GET": get_fields, "POST": create_field},
    "/fetch/subscribers": {"GET": get_subscriber, "POST": create_subscriber},
    "/fetch/commands": {"POST": commands},
    "/experimental/validation": {"POST": validation},
    "/stats/site": {"GET": site_stats},
}


# -- the dispatcher -------------------------------------------------------------


def _count(doc: Any) -> int:
    """Records in a body: events, subscribers, emails or commands."""
    if not isinstance(doc, dict):
        return 0
    for key in ("events", "subscribers", "emails", "command"):
        value = doc.get(key)
        if isinstance(value, list):
            return len(value)
        if key == "command" and isinstance(value, dict):
            return 1
    return 0


def _phrase(status: int) -> str:
    if status == 429:
        return "Too many requests"  # what the emulator's own limiter answers
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _fault_response(fault: Fault) -> Response:
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    body = fault.body
    if body is None:
        body = {"error": _phrase(fault.status)}
    if isinstance(body, str):
        return PlainTextResponse(body, status_code=fault.status, headers=headers)
    return _json(fault.status, body, headers)


class EmulatedAPI:
    """The ASGI app behind every `/api/v1/...` path (Bento's side of what the
    library's client, `bento_track.api.BentoAPI`, calls)."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        seq = state.log.arrive()
        arrived = state.settings.clock()
        request = Request(scope, receive)
        try:
            doc = await self._read(request)
        except ClientDisconnect:
            # The client left mid-body: nobody to answer; logged as dropped.
            state.log.record(seq, request.method, request.url.path, 0, arrived, 0)
            return
        response = await self._answer(request, doc, seq)
        if response is not _ABANDONED:
            status = response.status_code if isinstance(response, Response) else 0
            state.log.record(
                seq, request.method, request.url.path, status, arrived, _count(doc)
            )
        if isinstance(response, Response):
            await response(scope, receive, send)
        else:
            await _drop(receive)

    async def _read(self, request: Request) -> dict[str, Any] | BodyError:
        """The body as a JSON object (`{}` when empty), or why it is refused.

        Read (up to the size cap) before any answer, even a fault's, so the
        request log counts the records of every request.
        """
        try:
            raw = await read_body(request, self.state.settings.max_body_bytes)
            return parse_body(raw, request.headers.get("content-type"))
        except BodyError as refused:
            return refused

    async def _answer(
        self, request: Request, doc: dict[str, Any] | BodyError, seq: int
    ) -> Response | object:
        """The response; `_DROPPED` to drop the connection; `_ABANDONED` to
        drop it without logging (a slow answer outlived a reset).

        An `EdgeRefusal` is answered right after faults, as by a proxy in
        front of Bento; any other refused body only once auth and routing
        have passed, as Rails does.
        """
        state = self.state
        fault = state.faults.take()
        if fault is not None:
            if fault.kind == "drop":
                return _DROPPED
            if fault.kind == "slow":
                if not await self._delay(fault.seconds):
                    return _ABANDONED
            else:
                return _fault_response(fault)
        if isinstance(doc, EdgeRefusal):
            return _json(doc.status, doc.body)

        if user_agent_blocked(request.headers.get("user-agent")):
            return PlainTextResponse(
                "error code: 1010", status_code=403, headers={"Server": "cloudflare"}
            )
        settings = state.settings
        if not basic_auth_ok(
            request.headers.get("authorization"),
            settings.publishable_key,
            settings.secret_key,
        ):
            return PlainTextResponse(
                "HTTP Basic: Access denied.\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="Application"'},
            )
        site = request.query_params.get("site_uuid")
        if not site and isinstance(doc, dict):
            site = doc.get("site_uuid")
        if not site:
            return _error(401, "site_uuid is required")
        if site != settings.site_uuid:
            return _error(401, "site_uuid is not valid for these API keys")

        retry_after = state.limiter.acquire(settings.publishable_key)
        if retry_after:
            return _json(
                429, {"error": "Too many requests"}, {"Retry-After": str(retry_after)}
            )

        path = request.url.path[len(PREFIX) :].rstrip("/")
        methods = ROUTES.get(path)
        if methods is None:
            return _error(404, "Not Found")
        handler = methods.get(request.method)
        if handler is None:
            return _json(
                405, {"error": "Method Not Allowed"}, {"Allow": ", ".join(methods)}
            )
        if isinstance(doc, BodyError):
            return _json(doc.status, doc.body)
        try:
            return await handler(Call(state, request, doc, seq))
        except BodyError as refused:
            return _json(refused.status, refused.body)

    async def _delay(self, seconds: float) -> bool:
        """Wait `seconds` without blocking other requests; False when a reset
        or shutdown came first (the answer is then abandoned)."""
        state = self.state
        generation = state.generation
        deadline = anyio.current_time() + seconds
        while True:
            if state.closing or state.generation != generation:
                return False
            left = deadline - anyio.current_time()
            if left <= 0:
                return True
            await anyio.sleep(min(left, _SLOW_TICK))


async def _drop(receive: Receive) -> None:
    """Close the connection without an HTTP answer.

    Under uvicorn, `receive` is a method of the request cycle, which holds the
    transport: aborting it makes the client see a closed connection (no status
    line). Waiting for uvicorn to notice stops it from answering 500 itself.
    In-process (no transport) the caller gets `ConnectionDropped` instead.
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        raise ConnectionDropped(
            "the emulator dropped this connection (fault injection)"
        )
    transport.abort()
    for _ in range(100):
        if getattr(cycle, "disconnected", True):
            return
        await anyio.sleep(0)
