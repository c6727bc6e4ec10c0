"""Prometheus: the delivery pipeline's figures (`Client.stats()`) as metrics,
read when Prometheus scrapes, so capture pays nothing per event.

```python
from prometheus_client import make_wsgi_app, make_asgi_app
from bento_track.integrations import prometheus

metrics = prometheus.register()          # the registry to serve
# Flask:   app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/metrics": make_wsgi_app(metrics)})
# FastAPI: app.mount("/metrics", make_asgi_app(metrics))
```

`register(registry=None, client=None)` adds the figures of `client` (the
default client when None, looked up at each scrape) to `registry` (the
default `prometheus_client.REGISTRY` when None) and returns the registry to
serve. Every metric is named `bento_track_*` and labelled with `site_uuid`
(figures.py holds the table: names, types, meaning).

**Multiprocess mode** (gunicorn and friends, `PROMETHEUS_MULTIPROC_DIR` set,
as prometheus_client's documentation describes, with `mark_process_dead` in
gunicorn's `child_exit`): a scrape reaches one worker, but each worker has
its own client and counters. So each process publishes its own figures
(counters, its queue) into prometheus_client's per-process files every
`interval` seconds, from a daemon thread, and at exit; prometheus_client sums
the counters of every process, and sums (`livesum`) or takes the largest
(`livemax`) gauge of the live ones. A durable store (SQLite, Redis) is shared
by every process, so its figures (depth, oldest age, budget, pause) are not
published per process, which would count them once per worker: the worker
that answers the scrape reads them from the store. With `registry=None` the
returned registry is a fresh one holding prometheus_client's
`MultiProcessCollector` and that reader; a registry you pass should hold the
`MultiProcessCollector` already.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence

from .extras import missing_framework

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.metrics_core import Metric
    from prometheus_client.multiprocess import MultiProcessCollector
except ImportError as exc:
    raise missing_framework(exc, "prometheus") from None

from .._default import get_client
from .._delivery.worker import DeliveryStats
from .._internal import RateLimitedLog
from ..client import Client
from .figures import FIGURES, Figure, readings, site_label

__all__ = [
    "PREFIX",
    "BentoCollector",
    "exported_names",
    "multiprocess_mode",
    "register",
]

#: every metric's name starts with it
PREFIX = "bento_track_"
#: seconds between two publications of a process's figures (multiprocess mode)
DEFAULT_INTERVAL = 5.0

_log = RateLimitedLog()


def multiprocess_mode() -> bool:
    """True when prometheus_client runs in multiprocess mode (the variable is
    read by prometheus_client when it is first imported)."""
    return bool(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        or os.environ.get("prometheus_multiproc_dir")
    )


def _exported() -> list[Figure]:
    return [f for f in FIGURES if f.name is not None]


def _family(figure: Figure) -> CounterMetricFamily | GaugeMetricFamily:
    name = PREFIX + str(figure.name)
    if figure.kind == "counter":
        return CounterMetricFamily(name, figure.help, labels=figure.labels)
    return GaugeMetricFamily(name, figure.help, labels=figure.labels)


def _read(client: Client | None) -> tuple[Client, DeliveryStats] | None:
    """`client.stats()` (the default client's when None), or None with a
    warning at most once a minute: a scrape never fails because of us."""
    try:
        resolved = get_client() if client is None else client
        return resolved, resolved.stats()
    except Exception as exc:
        _log.warn(
            "stats",
            1,
            "could not read stats() for Prometheus (%s: %s); its figures are "
            "left out of this scrape",
            type(exc).__name__,
            exc,
        )
        return None


def _shared(stats: DeliveryStats) -> bool:
    """Whether the client's store is shared by processes (durable)."""
    return stats.store is not None and stats.store.kind != "memory"


class _Clients:
    """The clients whose figures are exported (None: the default client,
    resolved at each read), each once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Client | None] = []

    def add(self, client: Client | None) -> None:
        with self._lock:
            if not any(entry is client for entry in self._entries):
                self._entries.append(client)

    def read(self) -> Iterator[tuple[Client, DeliveryStats]]:
        with self._lock:
            entries = list(self._entries)
        seen: set[int] = set()
        for entry in entries:
            result = _read(entry)
            if result is not None and id(result[0]) not in seen:
                seen.add(id(result[0]))
                yield result


class BentoCollector:
    """A prometheus_client collector of clients' `stats()`, read at scrape
    time. `store_only`: only the figures of durable stores, for the worker
    answering a scrape in multiprocess mode (the rest is published per
    process)."""

    def __init__(self, *, store_only: bool = False) -> None:
        self.store_only = store_only
        self.clients = _Clients()

    def add(self, client: Client | None) -> None:
        """Export `client`'s figures too (None: the default client)."""
        self.clients.add(client)

    def _figures(self) -> list[Figure]:
        if self.store_only:
            return [f for f in _exported() if f.scope == "store"]
        return _exported()

    def describe(self) -> Iterable[Metric]:
        """The metrics without samples (so registering reads no stats)."""
        return [_family(f) for f in self._figures()]

    def collect(self) -> Iterable[Metric]:
        """Every figure of every client, read now."""
        families = {f.name: _family(f) for f in self._figures()}
        for client, stats in self.clients.read():
            if self.store_only and not _shared(stats):
                continue  # a memory store is this process's: published
            site = site_label(client)
            scope = "store" if self.store_only else None
            for figure, label, value in readings(stats, scope=scope):
                family = families.get(figure.name)
                if family is not None:
                    labels = [site] if label is None else [site, label]
                    family.add_metric(labels, value)
        return list(families.values())


class _Publisher:
    """Multiprocess mode: writes this process's figures into prometheus_client's
    per-process files (every `interval` seconds, and at exit), where the
    `MultiProcessCollector` of whichever worker is scraped finds them."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.clients = _Clients()
        self._lock = threading.Lock()
        self._metrics: dict[str, Counter | Gauge] = {}
        #: counter values this process has written, by (name, labels)
        self._written: dict[tuple[str, tuple[str, ...]], float] = {}
        self._pid = os.getpid()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _metric(self, figure: Figure) -> Counter | Gauge:
        name = str(figure.name)
        metric = self._metrics.get(name)
        if metric is None:
            if figure.kind == "counter":
                metric = Counter(
                    PREFIX + name, figure.help, figure.labels, registry=None
                )
            else:
                metric = Gauge(
                    PREFIX + name,
                    figure.help,
                    figure.labels,
                    registry=None,
                    multiprocess_mode="livemax"
                    if figure.combine == "max"
                    else "livesum",
                )
            self._metrics[name] = metric
        return metric

    def publish(self) -> None:
        """Write every client's per-process figures now."""
        found = list(self.clients.read())  # outside the lock: a fork waits less
        with self._lock:
            if self._pid != os.getpid():  # a forked child starts from zero
                self._pid = os.getpid()
                self._written.clear()
            for client, stats in found:
                site = site_label(client)
                shared = _shared(stats)
                for figure, label, value in readings(stats):
                    if figure.name is None or (figure.scope == "store" and shared):
                        continue
                    labels = (site,) if label is None else (site, label)
                    self._write(figure, labels, value)

    def _write(self, figure: Figure, labels: tuple[str, ...], value: float) -> None:
        child = self._metric(figure).labels(*labels)
        if isinstance(child, Gauge):
            child.set(value)
            return
        key = (str(figure.name), labels)
        before = self._written.get(key, 0.0)
        # A count that went down belongs to a new client (init() again):
        # Prometheus counters only go up, so its count is added.
        delta = value - before if value >= before else value
        self._written[key] = value
        if delta > 0:
            child.inc(delta)

    def start(self) -> None:
        """Publish now, then every `interval` seconds from a daemon thread."""
        self._safe_publish()
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="bento_track-prometheus", daemon=True
        )
        self._thread.start()

    def before_fork(self) -> None:
        """No write is half done in a fork: prometheus_client's own lock,
        taken inside a write, would stay held in the child forever."""
        self._lock.acquire()

    def after_fork_in_parent(self) -> None:
        """The fork is done: writes may go on."""
        self._lock.release()

    def after_fork_in_child(self) -> None:
        """The parent's thread is not in the child: start this process's own."""
        self._lock = threading.Lock()
        self._thread = None
        self.start()

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval):
            self._safe_publish()

    def _safe_publish(self) -> None:
        try:
            self.publish()
        except Exception as exc:  # never into the host app
            _log.warn(
                "publish",
                1,
                "could not publish figures for Prometheus (%s: %s)",
                type(exc).__name__,
                exc,
            )


_lock = threading.Lock()
_collectors: weakref.WeakKeyDictionary[CollectorRegistry, BentoCollector] = (
    weakref.WeakKeyDictionary()
)
_publisher: _Publisher | None = None
_scrape_registry: CollectorRegistry | None = None


def _start_publisher(client: Client | None, interval: float) -> None:
    global _publisher
    if _publisher is None:
        _publisher = _Publisher(interval)
        publisher = _publisher
        os.register_at_fork(
            before=publisher.before_fork,
            after_in_parent=publisher.after_fork_in_parent,
            after_in_child=publisher.after_fork_in_child,
        )
        atexit.register(publisher._safe_publish)
    _publisher.interval = min(_publisher.interval, interval)
    _publisher.clients.add(client)
    _publisher.start()


def register(
    registry: CollectorRegistry | None = None,
    client: Client | None = None,
    *,
    interval: float = DEFAULT_INTERVAL,
) -> CollectorRegistry:
    """Export `client`'s figures (the default client when None) through
    `registry` (prometheus_client's default one when None); return the
    registry to serve on `/metrics`. Calling it again for the same registry
    and client changes nothing; another client joins the same metrics under
    its own `site_uuid`.

    In multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`), this process's figures
    are published every `interval` seconds (see the module docstring), and
    `registry=None` gives a registry holding the `MultiProcessCollector`.
    """
    global _scrape_registry
    if interval <= 0:
        raise ValueError("interval must be positive")
    multiprocess = multiprocess_mode()
    with _lock:
        if registry is None:
            if not multiprocess:
                registry = REGISTRY
            elif _scrape_registry is None:
                registry = _scrape_registry = CollectorRegistry()
                MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            else:
                registry = _scrape_registry
        collector = _collectors.get(registry)
        if collector is None:
            collector = BentoCollector(store_only=multiprocess)
            collector.add(client)
            registry.register(collector)
            _collectors[registry] = collector
        else:
            collector.add(client)
        if multiprocess:
            _start_publisher(client, interval)
    return registry


def exported_names(figures: Sequence[Figure] = FIGURES) -> list[str]:
    """The names of the metrics `register` exports, as a scrape shows them
    (counters with `_total`)."""
    return [
        PREFIX + f.name + ("_total" if f.kind == "counter" else "")
        for f in figures
        if f.name is not None
    ]
