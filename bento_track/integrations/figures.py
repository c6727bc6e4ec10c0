"""The figures of `Client.stats()` as metrics: one table that the Prometheus
and OpenTelemetry integrations both render, so the two never disagree on what
a figure means.

Each `Figure` reads one field of `DeliveryStats` (or of its `store`,
a `StoreStats`). A field holding a dict (`dropped`) becomes one series per key,
under a label (`reason`), whatever keys the worker counts. `site_uuid` is
always a label, never part of a name.

`scope` says whose figure it is, which is what multiprocess deployments need:
`process` figures are this process's (its counters, its queue), so a fleet's
figure is the sum over processes; `store` figures are the store's, and a
durable store (SQLite, Redis) is shared by every process that uses it, so
they are read once, from the store, never summed per process.

Fields no operator graphs are named in `NOT_EXPORTED`, with the reason;
tests/integrations check that every field of `Client.stats()` is one or the
other, so a new figure cannot be forgotten silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from .._delivery.worker import DeliveryStats
from ..stores import StoreStats

__all__ = [
    "FIGURES",
    "NOT_EXPORTED",
    "Figure",
    "Reading",
    "field_names",
    "readings",
    "site_label",
]

#: one figure's value for one label value (None: the figure has no label)
Reading = tuple["Figure", "str | None", float]


def _num(value: object) -> float:
    """A stats value as a metric value: None (never happened, empty) is 0."""
    if value is None:
        return 0.0
    return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Figure:
    """One metric drawn from `Client.stats()`.

    Attributes:
        name: the Prometheus name, without the `bento_track_` prefix and a
            counter's `_total` suffix (None: an OpenTelemetry-only figure).
        kind: "counter" (only goes up in a process) or "gauge".
        help: what it means, for the metric's HELP and the README table.
        field: the `DeliveryStats` field it reads, or "store.<field>".
        scope: "process" (this process's; summed over processes) or
            "store" (the store's; shared by the processes of a durable store).
        combine: for a gauge kept per process: how processes combine in
            prometheus_client's multiprocess mode ("sum" or "max").
        label: the label a dict field's keys go under (e.g. "reason").
        otel: the OpenTelemetry instrument it feeds (several figures may
            feed one instrument, told apart by attributes).
        otel_kind: "counter", "updown" (a count that goes down) or "gauge".
        otel_unit: its UCUM unit.
        otel_attributes: attributes fixed for this figure in `otel`.
        otel_label: the attribute `label`'s keys go under in OpenTelemetry.
    """

    name: str | None
    kind: Literal["counter", "gauge"]
    help: str
    field: str
    scope: Literal["process", "store"]
    otel: str
    otel_kind: Literal["counter", "updown", "gauge"]
    otel_unit: str
    combine: Literal["sum", "max"] = "sum"
    label: str | None = None
    otel_attributes: tuple[tuple[str, str], ...] = ()
    otel_label: str | None = None
    #: reads the value(s) from the stats (label value -> value)
    read: Callable[[Any], dict[str | None, float]] | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """The Prometheus label names: `site_uuid`, and `label` if any."""
        return ("site_uuid",) if self.label is None else ("site_uuid", self.label)

    def values(self, stats: DeliveryStats) -> dict[str | None, float]:
        """This figure's values in `stats`, by label value (None: no label);
        empty when the field is absent (the store could not answer)."""
        if self.read is not None:
            return self.read(stats)
        source: Any = stats
        name = self.field
        if name.startswith("store."):
            source, name = stats.store, name[len("store.") :]
            if source is None:
                return {}
        if not hasattr(source, name):
            return {}
        value = getattr(source, name)
        if isinstance(value, dict):
            return {str(key): _num(count) for key, count in value.items()}
        return {None: _num(value)}


def _own(field: str) -> Callable[[Any], dict[str | None, float]]:
    """A reader of `field`, for a figure that only OpenTelemetry shows."""
    return lambda stats: {None: _num(getattr(stats, field, None))}


FIGURES: tuple[Figure, ...] = (
    # -- this process: what it captured and what became of it -----------------
    Figure(
        "events_enqueued",
        "counter",
        "Events captured and accepted into the queue.",
        "enqueued",
        "process",
        otel="bento_track.processor.event.enqueued",
        otel_kind="counter",
        otel_unit="{event}",
    ),
    Figure(
        "events_delivered",
        "counter",
        "Events in requests Bento answered with 2xx.",
        "sent",
        "process",
        otel="bento_track.processor.event.processed",
        otel_kind="counter",
        otel_unit="{event}",
    ),
    Figure(
        "events_dropped",
        "counter",
        "Events that will never be delivered, by reason (see stats().dropped).",
        "dropped",
        "process",
        label="reason",
        otel="bento_track.processor.event.processed",
        otel_kind="counter",
        otel_unit="{event}",
        otel_label="error.type",
    ),
    Figure(
        "subscriber_updates_delivered",
        "counter",
        "Subscriber upserts and commands Bento accepted, by kind (upsert, command).",
        "updates_sent",
        "process",
        label="kind",
        otel="bento_track.exporter.subscriber_update.exported",
        otel_kind="counter",
        otel_unit="{update}",
        otel_label="bento_track.kind",
    ),
    Figure(
        "events_accepted",
        "counter",
        "Events Bento counted as accepted in its 2xx answers (`results`).",
        "accepted",
        "process",
        otel="bento_track.exporter.event.exported",
        otel_kind="counter",
        otel_unit="{event}",
    ),
    Figure(
        "events_failed",
        "counter",
        "Events Bento counted as failed in its 2xx answers (`failed`).",
        "failed",
        "process",
        otel="bento_track.exporter.event.exported",
        otel_kind="counter",
        otel_unit="{event}",
        otel_attributes=(("error.type", "failed"),),
    ),
    Figure(
        "values_scrubbed",
        "counter",
        'Values replaced by "[Filtered]" before sending (Client(scrub=)).',
        "scrubbed",
        "process",
        otel="bento_track.processor.value.scrubbed",
        otel_kind="counter",
        otel_unit="{value}",
    ),
    Figure(
        "requests",
        "counter",
        "Requests made to Bento's batch API, by how they ended: the HTTP "
        'status, or "error" when no answer came (network error, timeout).',
        "responses",
        "process",
        label="status",
        otel="bento_track.exporter.requests",
        otel_kind="counter",
        otel_unit="{request}",
    ),
    Figure(
        "retries",
        "counter",
        "Requests retried after a 429, 5xx, 408 or network error.",
        "retried",
        "process",
        otel="bento_track.exporter.retries",
        otel_kind="counter",
        otel_unit="{request}",
    ),
    Figure(
        "queue_events",
        "gauge",
        "Events of this process waiting: inbox, queue and in flight (with a "
        "durable store, its events still in the store).",
        "queue_depth",
        "process",
        otel="bento_track.processor.event.queue.size",
        otel_kind="updown",
        otel_unit="{event}",
    ),
    Figure(
        "last_success_timestamp_seconds",
        "gauge",
        "When Bento last answered a request with 2xx (Unix time; 0: never).",
        "last_success_at",
        "process",
        combine="max",
        otel="bento_track.exporter.last_success.timestamp",
        otel_kind="gauge",
        otel_unit="s",
    ),
    Figure(
        "last_error_timestamp_seconds",
        "gauge",
        "When delivery last failed (Unix time; 0: never; the message is in "
        "stats().last_error and the log).",
        "last_error_at",
        "process",
        combine="max",
        otel="bento_track.exporter.last_error.timestamp",
        otel_kind="gauge",
        otel_unit="s",
    ),
    Figure(
        "auth_failed",
        "gauge",
        "1 when Bento refused the credentials (401/403/404): sending stopped, "
        "events are kept.",
        "auth_failed",
        "process",
        combine="max",
        otel="bento_track.exporter.auth_failed",
        otel_kind="gauge",
        otel_unit="1",
    ),
    Figure(
        "receiver_errors",
        "counter",
        "Calls to receivers of bento_track's signals that raised (ignored).",
        "receiver_errors",
        "process",
        otel="bento_track.receiver.errors",
        otel_kind="counter",
        otel_unit="{call}",
    ),
    Figure(
        "store_errors",
        "counter",
        "Failed writes to a durable store (the events wait in memory and are "
        "written again).",
        "store_errors",
        "process",
        otel="bento_track.store.errors",
        otel_kind="counter",
        otel_unit="{error}",
    ),
    # Refused events are also dropped{reason="rejected"}; OpenTelemetry's
    # exporter metric counts them as failed exports, as its conventions ask.
    Figure(
        None,
        "counter",
        "Events Bento refused (400/422).",
        "rejected",
        "process",
        otel="bento_track.exporter.event.exported",
        otel_kind="counter",
        otel_unit="{event}",
        otel_attributes=(("error.type", "rejected"),),
        read=_own("rejected"),
    ),
    # -- the store: shared by every process of a durable store ----------------
    Figure(
        "store_events",
        "gauge",
        "Events in the store, leased ones included.",
        "store.depth",
        "store",
        otel="bento_track.store.events",
        otel_kind="updown",
        otel_unit="{event}",
    ),
    Figure(
        "store_bytes",
        "gauge",
        "Encoded size of the events in the store.",
        "store.nbytes",
        "store",
        otel="bento_track.store.usage",
        otel_kind="updown",
        otel_unit="By",
    ),
    Figure(
        "store_max_bytes",
        "gauge",
        "The store's bound in bytes (past it, the overflow policy drops).",
        "store.max_bytes",
        "store",
        otel="bento_track.store.limit",
        otel_kind="updown",
        otel_unit="By",
    ),
    Figure(
        "store_leased_events",
        "gauge",
        "Events under lease: being sent, or halves of a bisected batch.",
        "store.leased",
        "store",
        otel="bento_track.store.leased",
        otel_kind="updown",
        otel_unit="{event}",
    ),
    Figure(
        "store_leases",
        "gauge",
        "Leases held, by every process.",
        "store.leases",
        "store",
        otel="bento_track.store.leases",
        otel_kind="updown",
        otel_unit="{lease}",
    ),
    Figure(
        "store_oldest_event_age_seconds",
        "gauge",
        "Seconds since the oldest waiting event was stored (0: none waits).",
        "store.oldest_age",
        "store",
        combine="max",
        otel="bento_track.store.oldest_event.age",
        otel_kind="gauge",
        otel_unit="s",
    ),
    Figure(
        "store_unassigned_events",
        "gauge",
        "Events written before stores knew accounts: never sent with a guessed "
        "account (bento-track store URL --adopt).",
        "store.unassigned",
        "store",
        otel="bento_track.store.unassigned",
        otel_kind="updown",
        otel_unit="{event}",
    ),
    Figure(
        "store_processes",
        "gauge",
        "Processes registered with the store.",
        "store.processes",
        "store",
        otel="bento_track.store.processes",
        otel_kind="updown",
        otel_unit="{process}",
    ),
    Figure(
        "store_stale",
        "gauge",
        "1 when the store could not be read just now (the figures are the last "
        "ones read).",
        "store.stale",
        "store",
        combine="max",
        otel="bento_track.store.stale",
        otel_kind="gauge",
        otel_unit="1",
    ),
    Figure(
        "store_reclaimed_events",
        "counter",
        "Events taken over from processes that died holding them (each may be "
        "delivered twice).",
        "store.reclaimed",
        "store",
        otel="bento_track.store.reclaimed",
        otel_kind="counter",
        otel_unit="{event}",
    ),
    Figure(
        "store_dropped_events",
        "counter",
        "Events the store's bound dropped (every process).",
        "store.dropped",
        "store",
        otel="bento_track.store.dropped",
        otel_kind="counter",
        otel_unit="{event}",
    ),
    Figure(
        "budget_used_requests",
        "gauge",
        "Requests started in the current window and still in flight (every "
        "process sharing the store).",
        "store.budget_used",
        "store",
        otel="bento_track.budget.usage",
        otel_kind="updown",
        otel_unit="{request}",
    ),
    Figure(
        "budget_limit_requests",
        "gauge",
        "Requests allowed per window (requests_per_minute).",
        "store.budget_limit",
        "store",
        otel="bento_track.budget.limit",
        otel_kind="updown",
        otel_unit="{request}",
    ),
    Figure(
        "budget_window_seconds",
        "gauge",
        "The request budget's window (rate_window).",
        "store.budget_window",
        "store",
        combine="max",
        otel="bento_track.budget.window",
        otel_kind="gauge",
        otel_unit="s",
    ),
    Figure(
        "paused",
        "gauge",
        "1 while sending is paused after Bento answered 429.",
        "store.paused_until",
        "store",
        combine="max",
        otel="bento_track.exporter.paused",
        otel_kind="gauge",
        otel_unit="1",
        read=lambda stats: (
            {}
            if stats.store is None
            else {None: 0.0 if stats.store.paused_until is None else 1.0}
        ),
    ),
)

#: fields of `Client.stats()` deliberately not exported, and why
NOT_EXPORTED: dict[str, str] = {
    "requests": "the sum of `responses` (bento_track_requests_total by status)",
    "last_error": "free text; in the log and stats(), never a label",
    "paused_until": "the store's pause: `paused` reads store.paused_until",
    "store": "read field by field (store.*)",
    "store.kind": "which store: configuration, not a figure",
    "store.location": "which store: configuration, not a figure",
    "store.schema_version": "the file's format: for `bento-track store`",
    "store.site_uuid": "the `site_uuid` label of every metric",
    "store.accounts": "other accounts' figures: each client exports its own "
    "(`bento-track store URL` lists them all)",
}


def field_names(stats_type: type[Any]) -> list[str]:
    """Every field of a stats dataclass, the store's as `store.<name>`: what
    `FIGURES` and `NOT_EXPORTED` must cover between them."""
    names = [f.name for f in dataclasses.fields(stats_type)]
    return names + [f"store.{f.name}" for f in dataclasses.fields(StoreStats)]


def site_label(client: Any) -> str:
    """The `site_uuid` label of a client's figures ("" when it has no
    configuration: a disabled or unconfigured client)."""
    config = getattr(client, "config", None)
    return str(getattr(config, "site_uuid", "") or "")


def readings(stats: DeliveryStats, *, scope: str | None = None) -> Iterator[Reading]:
    """Every figure's values in `stats` (only those of `scope` if given)."""
    for figure in FIGURES:
        if scope is None or figure.scope == scope:
            for label, value in figure.values(stats).items():
                yield figure, label, value
