"""`EmulatorServer`: the emulator under uvicorn in a background thread."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from .app import create_app
from .hosts import display_host, exposure_warning
from .inspector import Inspector
from .settings import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PUBLISHABLE_KEY,
    DEFAULT_RATE_WINDOW,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_SECRET_KEY,
    DEFAULT_SITE_UUID,
    EmulatorSettings,
)
from .state import EmulatorState

__all__ = ["EmulatorExposedWarning", "EmulatorServer"]

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def _import_uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "the Bento emulator's server needs uvicorn: "
            "pip install 'bento-track[emulator]'"
        ) from exc
    return uvicorn


class EmulatorExposedWarning(UserWarning):
    """An `EmulatorServer` binds an address other machines may reach."""


class EmulatorServer:
    """A Bento-compatible API on a loopback port, in a daemon thread.

    `start()` returns once the port accepts connections; `stop()` (or leaving
    `with`) shuts it down within a few seconds even with slow answers pending.

    Args:
        host: the address to bind. Keep 127.0.0.1: the emulator has no real
            security, and binding another address warns
            (`EmulatorExposedWarning`). `url` stays on loopback for 0.0.0.0.
        port: the port; 0 picks a free one.
        site_uuid, publishable_key, secret_key: the account's credentials.
        requests_per_minute, rate_window: the sliding-window rate limit.
        db_path: the SQLite file, or `":memory:"`.
        authors: senders `/batch/emails` accepts; `None` accepts any.
        clock: monotonic seconds for the rate limit (default `time.monotonic`).
        log_level: uvicorn's log level.
        max_body_bytes: larger request bodies get 413 (default 10 MiB).
        allowed_hosts: `Host` names answered besides localhost, 127.0.0.1,
            [::1] and the address a connection arrives on; requests for
            other names get 421 (the defence against DNS rebinding).

    Raises:
        ValueError: a setting out of range, or an allowed host that is not
            a host name.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        site_uuid: str = DEFAULT_SITE_UUID,
        publishable_key: str = DEFAULT_PUBLISHABLE_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
        rate_window: float = DEFAULT_RATE_WINDOW,
        db_path: str = ":memory:",
        authors: Sequence[str] | None = None,
        clock: Callable[[], float] | None = None,
        log_level: str = "warning",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self.host = host
        self.port = port
        self.settings = EmulatorSettings(
            site_uuid=site_uuid,
            publishable_key=publishable_key,
            secret_key=secret_key,
            requests_per_minute=requests_per_minute,
            rate_window=rate_window,
            db_path=db_path,
            authors=authors,
            clock=clock or time.monotonic,
            max_body_bytes=max_body_bytes,
            allowed_hosts=allowed_hosts,
        )
        exposed = exposure_warning(
            host, self.settings.allowed_hosts, "EmulatorServer(allowed_hosts=[...])"
        )
        if exposed is not None:
            # stacklevel=2: the warning names the caller's line, and Python
            # shows it once per line.
            warnings.warn(exposed, EmulatorExposedWarning, stacklevel=2)
        self.log_level = log_level
        self.app = create_app(self.settings)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._inspector: Inspector | None = None
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self.url!r}, site_uuid={self.site_uuid!r})"

    @property
    def state(self) -> EmulatorState:
        """The app's `EmulatorState` (store, faults, limiter, request log)."""
        state: EmulatorState = self.app.state.emulator
        return state

    @property
    def site_uuid(self) -> str:
        """The emulated account's site uuid."""
        return self.settings.site_uuid

    @property
    def publishable_key(self) -> str:
        """The emulated account's publishable key."""
        return self.settings.publishable_key

    @property
    def secret_key(self) -> str:
        """The emulated account's secret key (a test value; never shown)."""
        return self.settings.secret_key

    @property
    def url(self) -> str:
        """`http://HOST:PORT` (the real port once started); 127.0.0.1 (or
        [::1]) when bound to every address, which reaches the same server."""
        return f"http://{display_host(self.host)}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API root to give a client: `http://HOST:PORT/api/v1`."""
        return self.url + "/api/v1"

    def client_kwargs(self) -> dict[str, str]:
        """`site_uuid`, `publishable_key`, `secret_key`, `base_url` for a client."""
        return {
            "site_uuid": self.site_uuid,
            "publishable_key": self.publishable_key,
            "secret_key": self.secret_key,
            "base_url": self.base_url,
        }

    @property
    def inspect(self) -> Inspector:
        """The inspection API client (created on first use)."""
        if self._inspector is None:
            self._inspector = Inspector(self.url)
        return self._inspector

    @property
    def running(self) -> bool:
        """Whether the server thread is up."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> EmulatorServer:
        """Bind, serve in a daemon thread, and return once started.

        Raises:
            RuntimeError: the server did not start within 10 s (e.g. the
                port is in use).
        """
        if self.running:
            return self
        uvicorn = _import_uvicorn()
        # uvicorn binds the port itself: handing it a pre-bound socket makes
        # every loopback answer wait ~40 ms (delayed ACK) in our measurements.
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="off",
            # log_config=None: an embedded server must not reconfigure the
            # host's logging.
            log_config=None,
            log_level=self.log_level,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self.state.closing = False
        self._server = server
        self._failure = None
        self._thread = threading.Thread(
            target=self._serve, args=(server,), name="bento-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        tick = threading.Event()
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                self._thread.join(STOP_TIMEOUT)
                self._server = self._thread = None
                failure, self._failure = self._failure, None
                raise RuntimeError(
                    f"the Bento emulator could not start on {self.host}:{self.port} "
                    "(is the port in use?)"
                ) from failure
            tick.wait(0.005)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def _serve(self, server: Any) -> None:
        """The thread's body: uvicorn exits with `SystemExit` when it cannot
        bind; keep that for `start()` instead of letting the thread die loud."""
        try:
            server.run()
        except BaseException as exc:  # reported by start(), never swallowed
            self._failure = exc

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut down: pending slow answers end at once; wait up to `timeout`."""
        if self._inspector is not None:
            self._inspector.close()
            self._inspector = None
        if self._server is None or self._thread is None:
            return
        self.state.closing = True
        self._server.should_exit = True
        self._thread.join(timeout)
        self._server = None
        self._thread = None

    def close(self) -> None:
        """Stop and close the store (the SQLite file stays)."""
        self.stop()
        self.state.store.close()

    def __enter__(self) -> EmulatorServer:
        try:
            return self.start()
        except BaseException:
            # `__exit__` never runs when `__enter__` raises: close the store
            # `__init__` opened, or a failed start (port in use) leaks it.
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
