"""Flush on SIGTERM under servers that never run `atexit` after it, for ASGI
apps that get no lifespan shutdown (Django's ASGI handler ignores lifespan).

uvicorn handles SIGTERM by draining its requests and then raising the signal
again with the default handler back in place: the process dies of it, and
`atexit` hooks (the client's exit flush) never run. So, from inside the
server's event loop, `chain_sigterm()` puts a handler in front of the
server's own (only when the server installed one: never in place of the
default): on SIGTERM it asks the loop to flush every client at its next turn,
then calls the server's handler, which starts the drain; requests that end
during the drain flush what they captured (`terminating()`). Every flush is
bounded by the clients' `shutdown_timeout`. SIGINT needs none of this: it
ends in `KeyboardInterrupt`, and `atexit` runs.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any

from .._internal import internal_error
from ..client import live_clients

__all__ = ["chain_sigterm", "flush_all", "terminating"]

_lock = threading.Lock()
_chained = False
_terminating = False


def terminating() -> bool:
    """Whether SIGTERM arrived (through the chained handler)."""
    return _terminating


def flush_all() -> None:
    """Flush every live client, each within its `shutdown_timeout`, all
    within the longest of them. Never raises."""
    try:
        clients = [c for c in live_clients() if not c.disabled]
        if not clients:
            return
        deadline = time.monotonic() + max(c.shutdown_timeout for c in clients)
        for client in clients:
            left = min(client.shutdown_timeout, deadline - time.monotonic())
            if left > 0:
                client.flush(left)
    except Exception:
        internal_error("flush on SIGTERM")


def chain_sigterm() -> None:
    """Call from a coroutine on the server's loop (once is enough; later
    calls cost a check). Does nothing outside the main thread, or when no
    Python handler of SIGTERM is installed."""
    global _chained
    if _chained:
        return
    with _lock:
        if _chained or threading.current_thread() is not threading.main_thread():
            return
        _chained = True
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return
        loop = asyncio.get_running_loop()

        def on_sigterm(signum: int, frame: Any) -> None:
            global _terminating
            _terminating = True
            try:
                # At the loop's next turn, not here: this handler may have
                # interrupted code holding a lock the flush needs.
                loop.call_soon_threadsafe(flush_all)
            except RuntimeError:  # the loop is closed already
                pass
            previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)
