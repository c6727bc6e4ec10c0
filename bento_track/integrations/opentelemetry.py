"""OpenTelemetry: the delivery pipeline's figures (`Client.stats()`) as
observable instruments, read when the app's metric reader collects.

```python
from bento_track.integrations import opentelemetry as bento_otel

bento_otel.instrument()   # the global MeterProvider, the default client
```

Only `opentelemetry-api` is needed here; the app brings the SDK and its
exporters. Instruments are named the way OpenTelemetry's own SDK names its
pipeline metrics (`otel.sdk.processor.span.queue.size`,
`otel.sdk.processor.span.processed`, `otel.sdk.exporter.span.exported`), in
a `bento_track.` namespace: `bento_track.processor.event.queue.size`,
`bento_track.processor.event.processed` (delivered with no `error.type`,
dropped with `error.type` set to the drop reason: `queue_full`, `invalid`,
...), `bento_track.exporter.event.exported` (accepted by Bento, or
`error.type` `failed`/`rejected`), and the store's figures
(`bento_track.store.events`, `bento_track.store.oldest_event.age`, ...).
Every observation carries the `bento_track.site_uuid` attribute. The table is
in figures.py, shared with the Prometheus integration.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .extras import missing_framework

try:
    from opentelemetry.metrics import (
        CallbackOptions,
        MeterProvider,
        Observation,
        get_meter_provider,
    )
except ImportError as exc:
    raise missing_framework(exc, "opentelemetry") from None

from .._default import get_client
from .._delivery.worker import DeliveryStats
from .._internal import RateLimitedLog
from .._version import __version__
from ..client import Client
from .figures import FIGURES, Figure, site_label

__all__ = ["METER_NAME", "SITE_ATTRIBUTE", "instrument", "instrument_names"]

#: the meter's (instrumentation scope's) name
METER_NAME = "bento_track"
#: the attribute naming the Bento site of every observation
SITE_ATTRIBUTE = "bento_track.site_uuid"
#: seconds a read of stats() serves: one collection calls every callback in a row
SNAPSHOT_AGE = 0.5

#: descriptions of the instruments several figures feed
_DESCRIPTIONS = {
    "bento_track.processor.event.processed": "Events whose processing "
    "finished: delivered (no error.type) or dropped (error.type: the reason).",
    "bento_track.exporter.event.exported": "Events Bento answered for: "
    "accepted (no error.type), counted as failed in a 2xx answer "
    "(error.type=failed) or refused (error.type=rejected).",
}

_log = RateLimitedLog()


class _Snapshot:
    """`client.stats()`, read at most once per `max_age` seconds."""

    def __init__(
        self,
        client: Client | None,
        max_age: float = SNAPSHOT_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._value: tuple[str, DeliveryStats] | None = None

    def get(self) -> tuple[str, DeliveryStats] | None:
        """(site_uuid, stats), or None when they cannot be read."""
        with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.max_age:
                self._value = self._read()
                self._read_at = now
            return self._value

    def _read(self) -> tuple[str, DeliveryStats] | None:
        try:
            client = get_client() if self.client is None else self.client
            return site_label(client), client.stats()
        except Exception as exc:  # a collection never fails because of us
            _log.warn(
                "stats",
                1,
                "could not read stats() for OpenTelemetry (%s: %s)",
                type(exc).__name__,
                exc,
            )
            return None


def _groups() -> dict[str, list[Figure]]:
    groups: dict[str, list[Figure]] = {}
    for figure in FIGURES:
        groups.setdefault(figure.otel, []).append(figure)
    return groups


def _observations(
    figures: list[Figure], snapshot: _Snapshot
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        read = snapshot.get()
        if read is None:
            return []
        site, stats = read
        found = []
        for figure in figures:
            for label, value in figure.values(stats).items():
                attributes = {SITE_ATTRIBUTE: site, **dict(figure.otel_attributes)}
                if label is not None and figure.otel_label is not None:
                    attributes[figure.otel_label] = label
                found.append(Observation(value, attributes))
        return found

    return observe


def instrument_names() -> list[str]:
    """The names of the instruments `instrument()` creates."""
    return list(_groups())


def instrument(
    meter_provider: MeterProvider | None = None,
    client: Client | None = None,
    *,
    snapshot_age: float = SNAPSHOT_AGE,
) -> list[Any]:
    """Create observable instruments of `client`'s figures (the default
    client when None, looked up at each collection) on a `bento_track` meter
    of `meter_provider` (the global one when None); return them. Call it
    once per provider and client. One collection reads `stats()` once: its
    callbacks share a read for `snapshot_age` seconds."""
    provider = get_meter_provider() if meter_provider is None else meter_provider
    meter = provider.get_meter(METER_NAME, __version__)
    snapshot = _Snapshot(client, snapshot_age)
    instruments: list[Any] = []
    for name, figures in _groups().items():
        first = figures[0]
        callbacks = [_observations(figures, snapshot)]
        description = _DESCRIPTIONS.get(name, first.help)
        create = {
            "counter": meter.create_observable_counter,
            "updown": meter.create_observable_up_down_counter,
            "gauge": meter.create_observable_gauge,
        }[first.otel_kind]
        instruments.append(
            create(
                name,
                callbacks=callbacks,
                unit=first.otel_unit,
                description=description,
            )
        )
    return instruments
