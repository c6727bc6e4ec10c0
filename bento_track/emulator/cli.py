"""`bento-track emulator`: run the Bento-compatible server until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .hosts import (
    ALLOWED_HOSTS_VAR,
    allowed_hosts_from_env,
    display_host,
    exposure_warning,
    is_loopback,
)
from .settings import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PUBLISHABLE_KEY,
    DEFAULT_RATE_WINDOW,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_SECRET_KEY,
    DEFAULT_SITE_UUID,
    EmulatorSettings,
)

__all__ = ["add_arguments", "run"]

DEFAULT_PORT = 8025


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `bento-track emulator` options."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 = any free port)",
    )
    parser.add_argument("--site-uuid", default=DEFAULT_SITE_UUID)
    parser.add_argument("--publishable-key", default=DEFAULT_PUBLISHABLE_KEY)
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    parser.add_argument(
        "--db",
        default=":memory:",
        metavar="PATH",
        help="SQLite file to keep data across restarts (default: in memory)",
    )
    parser.add_argument(
        "--requests-per-minute",
        type=int,
        default=DEFAULT_REQUESTS_PER_MINUTE,
        help="rate limit: requests per window (default 100)",
    )
    parser.add_argument(
        "--rate-window",
        type=float,
        default=DEFAULT_RATE_WINDOW,
        help="rate limit window in seconds (default 60)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help="answer 413 to request bodies over N bytes "
        f"(default {DEFAULT_MAX_BODY_BYTES}, 10 MiB)",
    )
    parser.add_argument(
        "--author",
        action="append",
        dest="authors",
        metavar="EMAIL",
        help="an email sender the account knows (repeatable; default: any)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        dest="allowed_hosts",
        default=[],
        metavar="NAME",
        help="also answer requests addressed to NAME, e.g. a docker-compose "
        "service name (repeatable; adds to $" + ALLOWED_HOSTS_VAR + "). "
        "Besides these only localhost, 127.0.0.1, [::1] and the address a "
        "request arrives on are answered: the defence against DNS rebinding",
    )


def _remote_hint(bind: str, port: int, allowed: Sequence[str]) -> str:
    """How clients elsewhere reach a server bound to a non-loopback address."""
    if is_loopback(bind):
        return ""
    names = ", ".join(allowed) or "none yet: add --allow-host NAME"
    return (
        f"From other machines or containers, use http://NAME:{port}/api/v1 with "
        f"a NAME it answers (allowed hosts: {names}), and\n"
        "  export BENTO_ALLOW_INSECURE_HTTP=1\n"
    )


def run(args: argparse.Namespace) -> int:
    """Serve in the foreground until Ctrl-C; returns the exit status."""
    try:
        import uvicorn
    except ImportError:
        print(
            "bento-track emulator needs uvicorn: pip install 'bento-track[emulator]'",
            file=sys.stderr,
        )
        return 2
    from .app import create_app

    try:
        settings = EmulatorSettings(
            site_uuid=args.site_uuid,
            publishable_key=args.publishable_key,
            secret_key=args.secret_key,
            requests_per_minute=args.requests_per_minute,
            rate_window=args.rate_window,
            db_path=args.db,
            authors=args.authors,
            max_body_bytes=args.max_body_bytes,
            allowed_hosts=[*allowed_hosts_from_env(os.environ), *args.allowed_hosts],
        )
    except ValueError as exc:
        print(f"bento-track emulator: {exc}", file=sys.stderr)
        return 2
    exposed = exposure_warning(
        args.host,
        settings.allowed_hosts,
        f"--allow-host NAME (repeatable) or {ALLOWED_HOSTS_VAR}=NAME,NAME",
    )
    if exposed is not None:
        print(f"warning: {exposed}", file=sys.stderr)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        lifespan="off",
        ws="none",
        log_level="info",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    state = app.state.emulator

    # The URL is known only once bound (`--port 0`), so print from startup.
    original_startup = server.startup

    async def startup(sockets: object = None) -> None:
        await original_startup(sockets=sockets)  # type: ignore[arg-type]
        if not server.started:
            return
        port = server.servers[0].sockets[0].getsockname()[1]
        host = display_host(args.host)
        base = f"http://{host}:{port}/api/v1"
        # The well-known default key is safe to show; a chosen one is not.
        secret = (
            DEFAULT_SECRET_KEY
            if settings.secret_key == DEFAULT_SECRET_KEY
            else "<the --secret-key you chose>"
        )
        print(
            f"Bento emulator at {base}\n"
            f"Inbox (open in a browser): http://{host}:{port}/_emulator/\n"
            "Point bento_track at it:\n"
            f"  export BENTO_BASE_URL={base}\n"
            f"  export BENTO_SITE_UUID={settings.site_uuid}\n"
            f"  export BENTO_PUBLISHABLE_KEY={settings.publishable_key}\n"
            f"  export BENTO_SECRET_KEY={secret}\n"
            + _remote_hint(args.host, port, settings.allowed_hosts)
            + "Ctrl-C to stop.",
            flush=True,
        )

    server.startup = startup  # type: ignore[method-assign]

    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        state.closing = True
        state.store.close()
    return 0
