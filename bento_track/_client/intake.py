"""How a captured event reaches the delivery worker: scrubbing and
`before_send`, the `event_captured` signal (called directly when the client's
collector is its only receiver), and the inbox with its uncommon cases: a
fork, a refusal, sync mode, a full queue and its overflow policy.

`EventIntake` is the base class of `Client`: these are the client's private
methods, kept here so that client.py holds the public surface.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import httpx

from .. import signals
from .._capture.filtering import EventFilter
from .._core.clock import Clock
from .._delivery.sender import Sender
from .._delivery.worker import Queued, Worker, WorkerSettings
from .._internal import internal_error
from ..config import Config
from ..events import Event
from ..stores import Store
from .process import fork_locks, orphans

__all__ = ["EventIntake"]

_event_captured = signals.event_captured
_event_dropped = signals.event_dropped
_send = signals.send
_getpid = os.getpid


class EventIntake:
    """The private half of `Client`: capture into the worker's inbox, and the
    worker's renewal in a forked child. `Client.__init__` sets every
    attribute declared here."""

    strict: bool
    sync_mode: bool
    config: Config | None
    _settings: WorkerSettings
    _store: Store
    _clock: Clock
    _transport: httpx.BaseTransport | None
    _filter: EventFilter
    _filtering: EventFilter | None
    _worker: Worker
    _refuse: str | None
    _pid: int
    _max_queue: int
    _overflow: str
    _direct: bool
    _lifecycle: threading.Lock

    def _new_worker(self) -> Worker:
        sender = (
            Sender(self.config, transport=self._transport)
            if self.config is not None
            else None
        )
        return Worker(self, self._settings, self._store, sender, self._clock)

    def _capture(
        self, event: Event, where: str | None, keys_known: bool
    ) -> Event | None:
        filtering = self._filtering
        if filtering is not None:
            kept = filtering.apply(event, where, self.strict, keys_known)
            if kept is None:
                return None
            event = kept
        if self._direct and not _event_captured.is_muted:
            # The collector is the only receiver: what blinker's `send` would
            # do, without its per-call cost (this runs for every event).
            self._enqueue(event)
            return event
        # Every receiver, each guarded: one that raises is logged and
        # counted, and never keeps the event from the queue.
        failures = _send(_event_captured, self, event=event)
        if failures:
            self._worker.count_receiver_errors(failures)
        return event

    def _drop_filtered(
        self, event: Event, reason: str, error: BaseException | None, message: str
    ) -> None:
        """A drop decided by `before_send` (`filtered`, `hook_error`): counted
        and signalled like the worker's drops, but said by the filter (at
        DEBUG, or with the hook's traceback), not by a drop warning."""
        worker = self._worker
        with worker.progress:
            worker.dropped[reason] = worker.dropped.get(reason, 0) + 1
        if _event_dropped.receivers:
            failures = _send(
                _event_dropped,
                self,
                events=[event],
                reason=reason,
                error=error,
                message=message,
            )
            if failures:
                worker.count_receiver_errors(failures)

    def _collect(self, sender: object, *, event: Event, **_: Any) -> None:
        """The collector: this client's receiver of `event_captured`."""
        self._enqueue(event)

    def _enqueue(self, event: Queued) -> None:
        """Queue `event` for the worker; the common case is checked first."""
        worker = self._worker
        # The pid check stays although the `os.register_at_fork` hook renews
        # the worker: servers that fork in C (uWSGI's prefork) run no hook.
        if (
            self._refuse is not None
            or self.sync_mode
            or self._pid != _getpid()
            or len(worker.inbox) + worker.held >= self._max_queue
        ):
            admitted = self._admit(event)
            if admitted is None:
                return
            worker = admitted
        inbox = worker.inbox
        inbox.append(event)
        if len(inbox) >= worker.wake_at:
            worker.poke()

    def _admit(self, event: Queued) -> Worker | None:
        """The uncommon cases of `_enqueue`: a fork, a refusal, sync mode, a
        full queue. Returns the worker whose inbox takes the event, or None
        when the event was handled here (sent, refused or dropped)."""
        if self._pid != _getpid():
            self._after_fork()
        worker = self._worker
        if self._refuse is not None:
            worker.drop([event], self._refuse, queued=False)
            return None
        if self.sync_mode:
            worker.inbox.append(event)
            try:
                worker.run_sync(self._settings.sync_timeout)
            except Exception:  # delivery trouble never reaches the caller
                internal_error("sync-mode delivery")
            return None
        if len(worker.inbox) + worker.held >= self._max_queue and not self._make_room(
            worker
        ):
            worker.drop([event], "queue_full", queued=False)
            return None
        return worker

    def _make_room(self, worker: Worker) -> bool:
        """The overflow policy; True if the new event may be appended."""
        if self._overflow == "drop_oldest":
            worker.evict_from_inbox()  # else the worker trims its own oldest
            return True
        if self._overflow == "block":
            return worker.wait_for_space(self._max_queue, self._settings.block_timeout)
        return False

    def _update_direct(self) -> None:
        receivers = list(_event_captured.receivers_for(self))
        self._direct = len(receivers) == 1 and receivers[0] == self._collect

    def _after_fork(self) -> None:
        """In a forked child: a fresh inbox, queue, locks, connection pool and
        (lazily) thread. Events inherited from the parent are discarded here:
        the parent delivers them."""
        pid = _getpid()
        if self._pid == pid:
            return
        # One renewal even if several threads of a child forked without hooks
        # get here at once; a lock of this process (an inherited one may be
        # held by a thread that does not exist here).
        with fork_locks.setdefault(pid, threading.Lock()):
            if self._pid == pid:
                return
            old = self._worker
            if old.sender is not None:
                orphans.append(old.sender.forget_after_fork())
            try:
                self._store.after_fork()
            except Exception:  # a backend's bug must not keep the parent's worker
                internal_error("queue backend after_fork()")
            self._lifecycle = threading.Lock()
            self._filter.after_fork()
            self._worker = self._new_worker()
            self._pid = pid  # last: a failure above is retried at the next event
