"""The checks Bento's edge and Rails app make before reading a body:
Cloudflare's User-Agent rule, HTTP Basic auth, and `site_uuid`; and the
edge's body-size cap, applied while the body is read."""

from __future__ import annotations

import base64
import hmac

from starlette.requests import Request

from .validation import BodyError

__all__ = [
    "GENERIC_AGENTS",
    "EdgeRefusal",
    "basic_auth_ok",
    "read_body",
    "user_agent_blocked",
]

#: Default agents of HTTP libraries and tools; Cloudflare blocks them (1010).
GENERIC_AGENTS = (
    "python-httpx/",
    "python-requests/",
    "python-urllib/",
    "aiohttp",
    "go-http-client",
    "curl/",
    "wget",
    "node-fetch",
    "axios",
    "okhttp",
    "java/",
)


def user_agent_blocked(agent: str | None) -> bool:
    """Missing, empty or generic User-Agents are blocked."""
    if agent is None or not agent.strip():
        return True
    return agent.strip().lower().startswith(GENERIC_AGENTS)


def basic_auth_ok(header: str | None, user: str, password: str) -> bool:
    """Whether `Authorization` is `Basic base64(user:password)` (constant time)."""
    if not header:
        return False
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except ValueError:
        # binascii.Error, UnicodeDecodeError, and the plain ValueError
        # b64decode raises for a non-ASCII token are all ValueErrors.
        return False
    given_user, sep, given_password = decoded.partition(":")
    if not sep:
        return False
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return user_ok and password_ok


class EdgeRefusal(BodyError):
    """A body refused while it was read (413, or a malformed Content-Length),
    as a proxy in front of Bento would, whatever the path and credentials."""


def _too_large(limit: int) -> EdgeRefusal:
    return EdgeRefusal(413, {"error": f"Request body is over the {limit}-byte limit"})


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed `limit` bytes.

    A declared `Content-Length` over the limit is refused before reading a
    byte; a body without one (chunked) is counted as it streams and reading
    stops at the limit, so an oversized upload never sits in memory whole.
    (Under uvicorn the unread rest is discarded once the answer is sent.)

    Raises:
        EdgeRefusal: 413 over the limit; 400 for a malformed `Content-Length`.
        starlette.requests.ClientDisconnect: the client left mid-body.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        digits = declared.strip()
        if not (digits.isascii() and digits.isdigit()):
            raise EdgeRefusal(400, {"error": "Invalid Content-Length"})
        digits = digits.lstrip("0") or "0"
        # Compare lengths first: int() refuses strings over 4,300 digits.
        if len(digits) > len(str(limit)) or int(digits) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
