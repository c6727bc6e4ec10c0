"""`create_app(settings)`: the emulator as one Starlette app.

Usable in-process (`httpx.ASGITransport(app=create_app())`, with a base URL
on `http://127.0.0.1`: other host names are refused like any foreign `Host`)
or served by uvicorn (`EmulatorServer`). `app.state.emulator` holds its
`EmulatorState`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from .api import PREFIX, EmulatedAPI
from .inbox import inbox_routes
from .inspection import inspection_routes
from .local_only import LocalOnly
from .settings import EmulatorSettings
from .state import EmulatorState

__all__ = ["create_app"]


def create_app(settings: EmulatorSettings | None = None) -> Starlette:
    """A Bento-compatible API for one emulated account.

    Args:
        settings: the account, limits and storage; defaults to `EmulatorSettings()`.
    """
    state = EmulatorState(settings or EmulatorSettings())
    api = EmulatedAPI(state)
    routes = [
        # Before the inspection routes: `/_emulator/{kind}` must not see them.
        *inbox_routes(state),
        *inspection_routes(state),
        # An ASGI app as endpoint: every method and every path under /api/v1
        # reach the dispatcher, which answers 404/405 itself in Bento's order.
        Route(PREFIX + "/{path:path}", api),
    ]
    # Every request, whatever its path, passes the Host and cross-site checks.
    local_only = Middleware(
        LocalOnly, allowed_hosts=state.settings.allowed_hosts, refusals=state.refusals
    )
    app = Starlette(routes=routes, middleware=[local_only])
    app.state.emulator = state
    return app
