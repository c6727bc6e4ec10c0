"""`ClientStats`: a client's counters, delivery's and capture's together."""

from __future__ import annotations

from dataclasses import dataclass

from .._delivery.worker import DeliveryStats

__all__ = ["ClientStats", "client_stats"]


@dataclass(frozen=True)
class ClientStats(DeliveryStats):
    """`DeliveryStats`, and what capture counts.

    Attributes:
        scrubbed: values replaced by `"[Filtered]"` (see `Client(scrub=)`).
    """

    scrubbed: int = 0


def client_stats(delivery: DeliveryStats, scrubbed: int) -> ClientStats:
    """The client's snapshot: the worker's `delivery` counters and `scrubbed`."""
    return ClientStats(**vars(delivery), scrubbed=scrubbed)
