"""The Django sites the end-to-end tests serve (`shop`, `mailsite`,
`members`, packages beside this file): a fresh database made by the site's
own `setup_db`, and the site started under gunicorn (2 workers, WSGI) or
uvicorn (ASGI) against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..conftest import BIN, free_port, server_env

HERE = Path(__file__).resolve().parent


def make_database(site: str, path: Path) -> str:
    """A fresh database for `site` at `path`, which the site reads from the
    `<SITE>_DB` variable (pass it to `start`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTO_")}
    env[f"{site.upper()}_DB"] = str(path)
    subprocess.run(
        [sys.executable, "-m", f"{site}.setup_db"],
        cwd=HERE,
        env=env,
        check=True,
        timeout=120,
    )
    return str(path)


def command(
    site: str, kind: str, port: int, *, lifespan: bool, graceful_timeout: int = 0
) -> list[str]:
    """The command that serves `site`: `kind` is "gunicorn" or "uvicorn";
    without `lifespan`, uvicorn runs `--lifespan off` (exit flushes must not
    depend on it)."""
    if kind == "gunicorn":
        grace = (
            ["--graceful-timeout", str(graceful_timeout)] if graceful_timeout else []
        )
        return [
            str(BIN / "gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            *grace,
            f"{site}.wsgi:application",
        ]
    return [
        str(BIN / "uvicorn"),
        f"{site}.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *([] if lifespan else ["--lifespan", "off"]),
        "--log-level",
        "warning",
    ]


def start(
    site: str,
    kind: str,
    emulator: Any,
    servers: Any,
    log: Path,
    *,
    ready: str,
    lifespan: bool,
    graceful_timeout: int = 0,
    **env: str,
) -> Any:
    """`site` served by `kind` (the `servers` fixture stops it), with the
    emulator's settings and `env`; returns once `ready` (a path) answers."""
    port = free_port()
    server = servers(
        command(site, kind, port, lifespan=lifespan, graceful_timeout=graceful_timeout),
        env=server_env(emulator, **env),
        cwd=HERE,
        log=log,
        url=f"http://127.0.0.1:{port}",
    )
    server.wait_http(ready)
    return server
