"""The checks Bento's edge and Rails app make before reading a body:
Cloudflare's User-Agent rule, HTTP Basic auth, and `site_uuid`."""

from __future__ import annotations

import base64
import binascii
import hmac

__all__ = ["GENERIC_AGENTS", "basic_auth_ok", "user_agent_blocked"]

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
    except (binascii.Error, UnicodeDecodeError):
        return False
    given_user, sep, given_password = decoded.partition(":")
    if not sep:
        return False
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return user_ok and password_ok
