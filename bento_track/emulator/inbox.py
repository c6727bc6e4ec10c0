"""The inbox: a web page at `/_emulator/` showing what the app sent.

Like Mailpit or MailHog for mail, it lists the events, subscribers, emails,
commands, tags, fields and requests the emulator received, newest first, and
updates live by polling the JSON inspection API (the page is static; every
record is fetched as JSON and put in the DOM as text by `inbox/inbox.js`).
Subscribers show their fields, tags and when they last changed (`updated_at`:
an event, command or upsert that touched them), the last changed first, so a
running subscriber sync shows its work at the top.

Everything it needs ships in `bento_track/emulator/inbox/`: no asset comes
from the internet, so the page works offline and with the emulator bound to
loopback. An email's HTML is previewed from its own URL, with a CSP `sandbox`
header, inside an `<iframe sandbox="">`: it never runs scripts and never
shares the page's origin.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from .state import EmulatorState

__all__ = [
    "ASSETS",
    "PAGE_CSP",
    "PREVIEW_CSP",
    "inbox_page",
    "inbox_routes",
    "render_personalizations",
]

#: The page's script and style, by name, with their content types. Only these
#: are served: a name is never joined to a path, so nothing else can be read.
ASSETS = {
    "inbox.js": "text/javascript; charset=utf-8",
    "inbox.css": "text/css; charset=utf-8",
}

#: The page runs only its own script and style and talks only to its origin;
#: frames come from the same origin (the email preview) and are sandboxed.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

#: An email preview is untrusted HTML: sandboxed even when opened on its own
#: (no scripts, an opaque origin), inline styles allowed because emails are
#: styled inline, and nothing fetched from elsewhere (no tracking pixels, no
#: remote fonts), so previews work offline and show what is in the email.
PREVIEW_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:; frame-ancestors 'self'"
)

_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The records change all the time; a cached page or preview would lie.
    "Cache-Control": "no-store",
}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")


@functools.cache
def _asset(name: str) -> bytes:
    """A file from `bento_track/emulator/inbox/`, read once (package data, so
    it works from a wheel, an sdist or a zip import)."""
    return (
        resources.files("bento_track.emulator")
        .joinpath("inbox")
        .joinpath(name)
        .read_bytes()
    )


def inbox_page() -> Response:
    """The inbox page (`GET /_emulator/` from a browser)."""
    return Response(
        _asset("index.html"),
        media_type="text/html; charset=utf-8",
        headers={**_COMMON_HEADERS, "Content-Security-Policy": PAGE_CSP},
    )


def _liquid_text(value: Any) -> str:
    """A value as Liquid prints it: `true`/`false`, nothing for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_personalizations(body: str, values: Mapping[str, Any] | None) -> str:
    """`{{ name }}` in an email's HTML replaced by `values["name"]`, escaped.

    The emulator's own simple substitution, not Liquid: no filters, tags or
    loops. Values are HTML-escaped so a name like `Tom & Jerry` shows as
    written. A placeholder without a value is left as written, so a missing
    personalization is visible in the preview instead of silently empty.
    """
    if not values:
        return body

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            return match.group(0)
        return html.escape(_liquid_text(values[key]))

    return _PLACEHOLDER.sub(replace, body)


def _find_email(state: EmulatorState, email_id: int) -> dict[str, Any] | None:
    for record in state.store.list("emails", meta=True):
        if record["id"] == email_id:
            data: dict[str, Any] = record["data"]
            return data
    return None


def inbox_routes(state: EmulatorState) -> list[Route]:
    """The inbox's own routes: its script and style, and email previews.

    The page itself is served by the `/_emulator/` route of the inspection
    API (HTML for a browser, the JSON summary otherwise).
    """

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return PlainTextResponse("not found", status_code=404)
        return Response(
            _asset(name), media_type=ASSETS[name], headers=dict(_COMMON_HEADERS)
        )

    async def preview(request: Request) -> Response:
        email = _find_email(state, request.path_params["id"])
        if email is None:
            return PlainTextResponse("no such email", status_code=404)
        personalizations = email.get("personalizations")
        body = render_personalizations(
            str(email.get("html_body", "")),
            personalizations if isinstance(personalizations, dict) else None,
        )
        return HTMLResponse(
            body, headers={**_COMMON_HEADERS, "Content-Security-Policy": PREVIEW_CSP}
        )

    return [
        Route("/_emulator/inbox/emails/{id:int}/preview", preview, methods=["GET"]),
        Route("/_emulator/inbox/{name}", asset, methods=["GET"]),
    ]
