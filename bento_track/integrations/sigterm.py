"""Deliver on SIGTERM under every ASGI server setup, lifespan or not, and say
what could not be delivered.

Why it is needed: uvicorn (alone or as gunicorn's `UvicornWorker`) handles
SIGTERM by draining its requests, running the lifespan shutdown if there is
one, then raising SIGTERM again with the default handler back in place: the
process dies of it, and `atexit` hooks (the clients' exit flush and its
report) never run. A hypercorn worker leaves SIGTERM at the default: a
SIGTERM sent to it (systemd and `kill -TERM -PGID` signal every process)
ends it at once.

So `chain_sigterm()`, called from the server's event loop in the main thread
(by `BentoMiddleware` at lifespan startup and at every request, by Django's
middleware, by the Starlette lifespan helpers), puts a handler in front of
the server's own:

- On SIGTERM it wakes a thread of its own, started beforehand (never in the
  handler: the interrupted code may hold a lock a new thread needs), which
  flushes every client at once, whatever the event loop is busy with; then
  it calls the server's handler, which starts the drain as before.
- The clients' exit (`Client.shutdown()`: a last flush within
  `shutdown_timeout`, then the log line saying how many events were left)
  runs at the last moment bento_track sees before the process dies: the
  lifespan shutdown when the app has a lifespan; without one, the end of the
  last request still running (`request_finished()`), or right after the
  signal when none is running: then the loop is held for that exit, as it
  has nothing else to do and the server would otherwise exit first.
- Without a lifespan, requests that end during the drain deliver what they
  captured before they return (`terminating()`), each within
  `shutdown_timeout`; with one, its shutdown delivers it all.
- Where the server installed no handler: in a hypercorn worker only, the
  handler takes the default's place, does the clients' exit on its thread,
  and ends the process with SIGTERM and the default handler, as before (a
  second SIGTERM ends it at once). Elsewhere a default handler is left
  alone: an exit then runs `atexit`, and a native handler Python cannot see
  (another server's) is not replaced.

Without a lifespan, a request that reaches the app after the clients' exit
(uvicorn takes new connections for up to 0.1 s after its handler ran) has
its events refused: counted as dropped (reason `shutdown`) and logged.

SIGINT needs none of this: it ends in `KeyboardInterrupt`, and `atexit` runs.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._internal import internal_error
from ..client import live_clients

if TYPE_CHECKING:
    from ..client import Client

__all__ = [
    "after_request",
    "chain_sigterm",
    "flush_all",
    "lifespan_ended",
    "lifespan_started",
    "request_finished",
    "request_started",
    "shutdown_all",
    "terminating",
]

Handler = Callable[[int, Any], Any]

_SIGTERM = signal.SIGTERM
_getsignal = signal.getsignal
_lock = threading.Lock()
#: never a handler: what `_Process.settled` starts as
_UNSEEN = object()


class _Flusher:
    """A daemon thread, started before any signal, that does the SIGTERM
    flush (or, with `final`, the clients' exit and then the process's end)
    when the handler asks: `SimpleQueue.put` is safe in a signal handler."""

    def __init__(self) -> None:
        self._asked: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self.done = threading.Event()
        thread = threading.Thread(
            target=self._run, name="bento-track-sigterm", daemon=True
        )
        thread.start()

    def ask(self, final: bool) -> None:
        self._asked.put(final)

    def _run(self) -> None:
        final = self._asked.get()
        try:
            if final:
                shutdown_all()
            else:
                flush_all()
        finally:
            self.done.set()
        if final:
            # The handler put the default back: the process ends of SIGTERM,
            # as it would have without bento_track.
            os.kill(os.getpid(), _SIGTERM)


class _Process:
    """This process's SIGTERM state (renewed in a forked child)."""

    def __init__(self) -> None:
        #: the SIGTERM handler last seen: ours, or one not chained (declined)
        self.settled: object = _UNSEEN
        self.terminating = False
        self.flusher: _Flusher | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        #: BentoMiddleware counts its requests in this process
        self.counted = False
        #: HTTP requests running (counted on the loop's thread)
        self.in_flight = 0
        #: an ASGI lifespan started: its shutdown is the last moment
        self.lifespan = False


_state = _Process()


def terminating() -> bool:
    """Whether SIGTERM arrived (through the chained handler)."""
    return _state.terminating


def flush_all() -> None:
    """Flush every live client, each within its `shutdown_timeout`, all
    within the longest of them. Never raises."""
    _each_client("flush on SIGTERM", lambda client, left: client.flush(left))


def shutdown_all() -> None:
    """The clients' exit, as `atexit` would do it: each `Client.shutdown()`
    flushes within its `shutdown_timeout` (all within the longest), stops
    its worker and logs how many events were left undelivered. Never
    raises."""
    _each_client("shutdown on SIGTERM", lambda client, left: client.shutdown(left))


def _each_client(where: str, call: Callable[[Client, float], object]) -> None:
    try:
        clients = [c for c in live_clients() if not c.disabled]
        if not clients:
            return
        deadline = time.monotonic() + max(c.shutdown_timeout for c in clients)
        for client in clients:
            left = min(client.shutdown_timeout, deadline - time.monotonic())
            call(client, max(0.0, left))
    except Exception:
        internal_error(where)


def chain_sigterm() -> None:
    """Call from a coroutine on the server's loop; every request may call it
    (when nothing changed it costs one `signal.getsignal`). Does nothing
    outside the main thread. Never raises."""
    if _getsignal(_SIGTERM) is _state.settled:
        return
    try:
        if threading.current_thread() is not threading.main_thread():
            return
        with _lock:
            _settle(_getsignal(_SIGTERM))
    except Exception:
        internal_error("chain_sigterm")


def _settle(current: object) -> None:
    state = _state
    if current is state.settled:
        return
    if callable(current):
        handler = _chained(current)
    elif current == signal.SIG_DFL and _hypercorn_worker():
        handler = _in_place_of_default
    else:  # ignored, native, or a default nobody asked us to replace
        state.settled = current
        return
    try:
        state.loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio): the lifespan does the exit
        state.loop = None
    if state.flusher is None:
        state.flusher = _Flusher()
    signal.signal(_SIGTERM, handler)
    state.settled = handler


def _hypercorn_worker() -> bool:
    """A hypercorn worker process: its master handles the signals, and the
    worker leaves SIGTERM at the default."""
    if "hypercorn" not in sys.modules:
        return False
    import multiprocessing

    return multiprocessing.parent_process() is not None


def _chained(previous: Handler) -> Handler:
    def on_sigterm(signum: int, frame: Any) -> None:
        state = _state
        if not state.terminating:
            state.terminating = True
            if state.flusher is not None:
                state.flusher.ask(final=False)
            loop = state.loop
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(_after_signal)
                except RuntimeError:  # the loop is closed already
                    pass
        previous(signum, frame)

    return on_sigterm


def _in_place_of_default(signum: int, frame: Any) -> None:
    state = _state
    signal.signal(_SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
    state.terminating = True
    if state.flusher is None:  # never: installed with its flusher
        os.kill(os.getpid(), _SIGTERM)
        return
    state.flusher.ask(final=True)


def _after_signal() -> None:
    """On the loop, at its first turn after SIGTERM (the server's drain has
    not begun: it looks at its flag on a timer)."""
    state = _state
    try:
        if state.lifespan:
            return  # its shutdown comes after the drain: the exit is done there
        if state.counted:
            if state.in_flight == 0:
                shutdown_all()  # nothing to serve: hold the loop for the exit
            return  # else the last request running does it
        # Requests are not counted here (Django): hold the loop until the
        # flush is done, or the server may exit at its next tick.
        flusher = state.flusher
        if flusher is not None:
            flusher.done.wait(_longest_timeout())
    except Exception:
        internal_error("after SIGTERM")


def _longest_timeout() -> float:
    return max((c.shutdown_timeout for c in live_clients()), default=0.0)


# -- what BentoMiddleware tells ---------------------------------------------------------


def request_started() -> None:
    """An HTTP request starts (call on the loop's thread)."""
    state = _state
    state.counted = True
    state.in_flight += 1


def request_finished() -> bool:
    """An HTTP request ended; True if the caller must await `after_request()`
    before returning to the server: SIGTERM arrived, and no lifespan
    shutdown will come after the drain to do the clients' exit."""
    state = _state
    state.in_flight -= 1
    return state.terminating and not state.lifespan


async def after_request() -> None:
    """During a drain without lifespan: deliver what the request captured
    (in a worker thread, within `shutdown_timeout`); the last request
    running does the clients' exit instead."""
    import anyio.to_thread

    last = _state.in_flight == 0
    await anyio.to_thread.run_sync(shutdown_all if last else flush_all)


def lifespan_started() -> None:
    """The app's lifespan started: its shutdown will be the last moment."""
    _state.lifespan = True


async def lifespan_ended(
    client: Client | None = None, *, every_client: bool = False
) -> None:
    """At the lifespan shutdown, in a worker thread: after SIGTERM, or in a
    hypercorn worker (which ends right after, through `atexit`), the
    clients' exit (`shutdown_all`). Otherwise a flush, as the lifespan may
    start again (a test client): of every client with `every_client`, else
    of `client` (default: the default client, if one exists), within
    `shutdown_timeout`. Never raises."""
    import anyio.to_thread

    try:
        if _state.terminating or _hypercorn_worker():
            await anyio.to_thread.run_sync(shutdown_all)
            return
        if every_client:
            await anyio.to_thread.run_sync(flush_all)
            return
        if client is None:
            from .._default import existing_client

            client = existing_client()  # only a default client that exists
        if client is not None:
            await anyio.to_thread.run_sync(client.flush, client.shutdown_timeout)
    except Exception:
        internal_error("lifespan flush")
    finally:
        _state.lifespan = False


def _wait_for_the_flusher() -> None:
    """At exit (before the clients' own hook, registered earlier): a SIGTERM
    flush still running finishes first; the interpreter would otherwise end
    its thread mid-way."""
    flusher = _state.flusher
    if _state.terminating and flusher is not None:
        flusher.done.wait(_longest_timeout() + 1.0)


def _forget_after_fork() -> None:
    global _state
    _state = _Process()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(_wait_for_the_flusher)
