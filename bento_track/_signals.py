"""The library's blinker signals, in a namespace of its own (never blinker's
global default namespace, so nothing collides with other libraries).

Every signal is sent with the capturing or delivering `Client` as sender, so a
receiver can listen to one client (`connect(fn, sender=client)`) or to all.

- `event_captured(client, event=Event)`: every captured event passes here; the
  client's collector is a receiver (connected for that client only) and
  enqueues it. Receivers run in the capturing thread: keep them cheap.
- `batch_sent(client, events=list[Event], accepted=int, failed=int)`: a batch
  got a 2xx; `accepted`/`failed` are Bento's `results`/`failed` counts.
- `batch_failed(client, events=list[Event], error=APIError, will_retry=bool)`:
  a batch attempt failed.
- `event_dropped(client, events=list[Event], reason=str, error=APIError | None)`:
  events that will never be delivered, with the reason (`queue_full`, `rejected`, `shutdown`,
  `retry_exhausted`, `oversize`, ...).
"""

from __future__ import annotations

from blinker import NamedSignal, Namespace

__all__ = ["SignalNamespace", "signals"]


class SignalNamespace(Namespace):
    """A blinker `Namespace` whose documented signals are also attributes."""

    @property
    def event_captured(self) -> NamedSignal:
        return self["event_captured"]

    @property
    def batch_sent(self) -> NamedSignal:
        return self["batch_sent"]

    @property
    def batch_failed(self) -> NamedSignal:
        return self["batch_failed"]

    @property
    def event_dropped(self) -> NamedSignal:
        return self["event_dropped"]


signals = SignalNamespace()
signals.signal("event_captured", doc="Every captured event; sender is the Client.")
signals.signal("batch_sent", doc="A batch Bento accepted (2xx).")
signals.signal("batch_failed", doc="A batch attempt that failed.")
signals.signal(
    "event_dropped", doc="Events that will never be delivered, with a reason."
)
