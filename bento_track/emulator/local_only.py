"""`LocalOnly`: the ASGI middleware that keeps the emulator a local tool.

The emulator holds test users' emails on a developer's laptop, next to
their browser. Before any route sees a request, this refuses, in Bento's
`{"error": ...}` shape and with no data:

- a `Host` the emulator does not answer (DNS rebinding, see `hosts`): 421,
  or 400 when the header is missing or malformed; on every path;
- a write to `/_emulator/...` (POST, PUT, DELETE) sent by another origin's
  page (403), or with a body that is not `application/json` (415) (see
  `origin`).

The Bento API under `/api/v1` keeps Bento's own rules: it needs Basic auth,
which a cross-site simple request cannot send, and JSON bodies.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .hosts import ALLOWED_HOSTS_VAR, host_allowed, normalize_allowed_hosts, parse_host
from .origin import foreign_source, json_body_refused
from .state import Refusals

__all__ = ["CONTROL_PREFIX", "LocalOnly"]

CONTROL_PREFIX = "/_emulator"
_READS = ("GET", "HEAD", "OPTIONS")


class LocalOnly:
    """Wraps the emulator's app; see the module's docstring.

    Args:
        app: the app to protect.
        allowed_hosts: names answered besides the loopback ones and the
            address a connection arrives on (`normalize_allowed_hosts`).
        refusals: where to count refused requests, if anywhere.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Iterable[str] = (),
        refusals: Refusals | None = None,
    ) -> None:
        self.app = app
        self.allowed_hosts = frozenset(normalize_allowed_hosts(allowed_hosts))
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a refused request here; pass any other to the app."""
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                if self.refusals is not None:
                    self.refusals.add(refusal.status_code)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        headers = Headers(scope=scope)
        raw_host = headers.get("host")
        if raw_host is None:
            return _error(400, "a Host header is required")
        host = parse_host(raw_host)
        if host is None:
            return _error(400, "the Host header is malformed")
        server = scope.get("server")
        local_address = server[0] if server else None
        if not host_allowed(host, self.allowed_hosts, local_address):
            # The name is echoed only once parsed: letters, digits, . - _ :
            return _error(
                421,
                f"this emulator does not answer requests for host {host}: "
                f"if clients reach it by that name, start it with --allow-host "
                f"{host} (or {ALLOWED_HOSTS_VAR}={host}, or "
                f"EmulatorServer(allowed_hosts=[{str(host)!r}]))",
            )
        path: str = scope["path"]
        is_control = path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")
        if not is_control or scope["method"] in _READS:
            return None
        foreign = foreign_source(
            headers.get("origin"), headers.get("referer"), scope["scheme"], host
        )
        if foreign is not None:
            return _error(403, foreign)
        has_body = (
            headers.get("content-length", "").strip().lstrip("0") != ""
            or "transfer-encoding" in headers
        )
        refused = json_body_refused(headers.get("content-type"), has_body)
        if refused is not None:
            return _error(415, refused)
        return None


def _error(status: int, message: str) -> JSONResponse:
    # no-store: a refusal must not be cached for the name that was refused.
    return JSONResponse(
        {"error": message}, status_code=status, headers={"Cache-Control": "no-store"}
    )
