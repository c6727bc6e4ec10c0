"""A local Bento-compatible API server for development and tests.

Same paths, auth, User-Agent rule, body validation, limits, response shapes
and rate limit as Bento's `/api/v1`; it stores what it accepts (SQLite), can
be inspected and can inject faults (`/_emulator/...`, `Inspector`). It is a
local tool: it answers only loopback `Host` names (and `allowed_hosts`),
and takes control writes only from its own pages or non-browser clients.

    from bento_track.emulator import EmulatorServer

    with EmulatorServer(port=0) as server:
        client = bento_track.Client(**server.client_kwargs())
        ...
        server.inspect.events()
"""

from __future__ import annotations

from .app import create_app
from .inspector import Inspector
from .server import EmulatorExposedWarning, EmulatorServer
from .settings import EmulatorSettings

__all__ = [
    "EmulatorExposedWarning",
    "EmulatorServer",
    "EmulatorSettings",
    "Inspector",
    "create_app",
]
