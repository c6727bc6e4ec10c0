"""The process's clients: the registry of live ones, and the process hooks
that act on them all: a change of `event_captured`'s receivers, a fork
(each client renews its worker in the child) and interpreter exit (each
gets a bounded flush).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from .. import signals
from .._internal import internal_error

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["clients", "fork_locks", "live_clients", "orphans"]

#: every `Client` of this process not yet garbage-collected
clients: weakref.WeakSet[Client] = weakref.WeakSet()
#: Connection pools inherited from a parent process: never closed nor
#: collected in the child, since their sockets belong to the parent.
orphans: list[object] = []
#: pid -> the lock of `Client._after_fork` in that process
fork_locks: dict[int, threading.Lock] = {}


def live_clients() -> list[Client]:
    """Every `Client` of this process not yet garbage-collected (for test
    helpers such as `bento_track.testing`, which make them all strict)."""
    return list(clients)


def _on_receivers_changed(_signal: Any, **_: Any) -> None:
    for client in list(clients):
        client._update_direct()


signals.event_captured.receiver_connected.connect(_on_receivers_changed, weak=False)
signals.event_captured.receiver_disconnected.connect(_on_receivers_changed, weak=False)


def _after_fork_in_child() -> None:
    for client in list(clients):
        try:
            client._after_fork()
        except Exception:  # one client's failure must not leave the others stale
            internal_error("after fork")


def _shutdown_all_at_exit() -> None:
    """The exit hook: every live client gets a bounded flush; leftovers are
    logged by `shutdown`. Daemon threads and deadlines keep exit from hanging."""
    live = [c for c in list(clients) if c._undelivered_at_shutdown is None]
    if not live:
        return
    deadline = time.monotonic() + max(c.shutdown_timeout for c in live)
    for client in live:
        try:
            client.shutdown(min(client.shutdown_timeout, deadline - time.monotonic()))
        except Exception:  # never break interpreter exit
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_shutdown_all_at_exit)
