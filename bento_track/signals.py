"""The library's blinker signals, importable by name:

    from bento_track.signals import event_captured, batch_sent, batch_failed, event_dropped

They live in a namespace of their own (`namespace`), never blinker's global
default one, so nothing collides with other libraries. Every signal is sent
with the capturing or delivering `Client` as sender, so a receiver can listen
to one client (`connect(fn, sender=client)`) or to all. Receivers take
`**kwargs` (more keyword arguments may be added).

- `event_captured(client, event=Event)`: every captured event passes here; the
  client's collector is a receiver (connected for that client only) and
  enqueues it. Receivers run in the capturing thread: keep them cheap.
- `batch_sent(client, events=list[Event], accepted=int, failed=int)`: a batch
  got a 2xx; `accepted`/`failed` are Bento's `results`/`failed` counts.
- `batch_failed(client, events=list[Event], error=APIError, will_retry=bool)`:
  a batch attempt failed.
- `event_dropped(client, events=list[Event], reason=str, error=Exception | None,
  message=str | None)`: events that will never be delivered, with the reason
  (`invalid`, `queue_full`, `oversize`, `unencodable`, `rejected`, `shutdown`,
  `disabled`, `not_configured`, `filtered` and `hook_error` from `before_send`,
  `broken`) and, where there is one, what was wrong. Subscriber upserts and
  commands are counted and logged like events, but never carried in `events`;
  `store_lost` (a SQLite file deleted under the process) is counted in
  `stats().dropped` and logged, with no signal (the events are gone).

The library sends every signal through `send()`: a receiver that raises is
logged on the `bento_track` logger (with its traceback, at most once a minute
per receiver) and counted in `stats().receiver_errors`; the other receivers
still run, and neither capture nor delivery ever fails because of it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from blinker import NamedSignal, Namespace

from ._internal import library_section, logger

__all__ = [
    "batch_failed",
    "batch_sent",
    "event_captured",
    "event_dropped",
    "namespace",
    "send",
]

namespace = Namespace()
event_captured: NamedSignal = namespace.signal(
    "event_captured", doc="Every captured event; sender is the Client."
)
batch_sent: NamedSignal = namespace.signal(
    "batch_sent", doc="A batch Bento accepted (2xx)."
)
batch_failed: NamedSignal = namespace.signal(
    "batch_failed", doc="A batch attempt that failed."
)
event_dropped: NamedSignal = namespace.signal(
    "event_dropped", doc="Events that will never be delivered, with a reason."
)

#: seconds between two tracebacks logged for the same receiver
LOG_INTERVAL = 60.0
_last_logged: dict[str, float] = {}
_last_logged_lock = threading.Lock()


def send(signal: NamedSignal, sender: object, **kwargs: Any) -> int:
    """Call every receiver of `signal` for `sender`; return how many raised.

    Unlike `NamedSignal.send`, one failing receiver does not stop the others,
    and its exception never reaches the caller (our capture or delivery code).
    """
    if signal.is_muted:
        return 0
    failures = 0
    for receiver in signal.receivers_for(sender):
        try:
            receiver(sender, **kwargs)
        except Exception:
            failures += 1
            _report(signal, receiver)
    return failures


def _report(signal: NamedSignal, receiver: Any) -> None:
    name = getattr(receiver, "__qualname__", None) or type(receiver).__qualname__
    name = f"{getattr(receiver, '__module__', '?')}.{name}"
    key = f"{signal.name}:{name}"
    now = time.monotonic()
    with _last_logged_lock:
        last = _last_logged.get(key)
        if last is not None and now - last < LOG_INTERVAL:
            return
        if len(_last_logged) >= 1024:  # receivers are few; bound it anyway
            _last_logged.clear()
        _last_logged[key] = now
    with library_section():
        logger.exception(
            "bento_track: a receiver of %s (%s) raised; ignored (logged at most "
            "once a minute per receiver, counted in stats().receiver_errors)",
            signal.name,
            name,
        )
