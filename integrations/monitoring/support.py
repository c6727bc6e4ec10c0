"""What the monitoring suites share: serving an app under gunicorn in
multiprocess mode, steering a request to each of its two workers, reading a
`/metrics` page with prometheus_client's parser, and what it should say
given each worker's `stats()`."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bento_track.integrations.figures import FIGURES
from bento_track.integrations.prometheus import PREFIX

from ..conftest import BIN, InFlight, Server, free_port, server_env

HERE = Path(__file__).resolve().parent
#: figures that move with the clock alone (checked apart)
MOVING = {"store_oldest_event_age_seconds", "budget_used_requests"}
#: a sample: (name, sorted label pairs)
Key = tuple[str, tuple[tuple[str, str], ...]]

_holds = itertools.count()


def start_gunicorn(
    servers: Callable[..., Server],
    emulator: Any,
    tmp_path: Path,
    *,
    store: str = "",
    preload: bool = False,
) -> Server:
    """flask_app under gunicorn -w 2 in multiprocess mode, answering."""
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    port = free_port()
    argv = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--workers", "2"]
    argv += ["--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5"]
    argv += ["--preload"] if preload else []
    site = servers(
        [*argv, "flask_app:app"],
        env=server_env(
            emulator,
            PROMETHEUS_MULTIPROC_DIR=str(multiproc),
            STORE=store,
            PUBLISH_INTERVAL="0.2",
        ),
        cwd=HERE,
        log=tmp_path / "gunicorn.log",
        url=f"http://127.0.0.1:{port}",
    )
    site.wait_http("/stats")
    return site


def get(url: str, timeout: float = 30) -> Any:
    """GET on a fresh connection (any idle worker may take it); the JSON."""
    response = httpx.get(url, timeout=timeout, trust_env=False)
    response.raise_for_status()
    return response.json()


def on_each_worker(site: Server, folder: Path, path: str) -> dict[int, Any]:
    """GET `path` once in each of gunicorn's two sync workers, by pid: a held
    request keeps one worker busy, so the other must serve the call; then a
    second hold pins that one and the first serves it."""
    results: dict[int, Any] = {}

    def hold() -> tuple[InFlight, Callable[[], Any]]:
        where = folder / f"hold{next(_holds)}"
        where.mkdir()
        held = InFlight(where)
        finish = held.start(lambda: get(f"{site.url}/hold?dir={where}"))
        return held, finish

    first, finish_first = hold()
    busy = int(first.entered.read_text())
    answer = get(site.url + path)
    results[answer["pid"]] = answer
    second, finish_second = hold()
    assert int(second.entered.read_text()) != busy  # the other worker
    finish_first()
    answer = get(site.url + path)
    results[answer["pid"]] = answer
    finish_second()
    assert len(results) == 2 and busy in results, results
    return results


def scrape(url: str) -> dict[Key, float]:
    """The bento_track samples of a /metrics page, parsed by prometheus_client
    (a mounted ASGI app redirects /metrics to /metrics/: followed, as
    Prometheus does)."""
    response = httpx.get(url, timeout=30, trust_env=False, follow_redirects=True)
    response.raise_for_status()
    found: dict[Key, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.startswith(PREFIX):
                key = (sample.name, tuple(sorted(sample.labels.items())))
                assert key not in found, f"{key} twice on one page"
                found[key] = sample.value
    return found


def as_stats(doc: dict[str, Any]) -> SimpleNamespace:
    """A worker's `stats()` (as JSON) with attribute access, as figures read it."""
    store = doc.get("store")
    fields = {**doc, "store": None if store is None else SimpleNamespace(**store)}
    return SimpleNamespace(**fields)


def expected(
    site_uuid: str, workers: Iterable[dict[str, Any]], *, shared_store: bool
) -> dict[Key, float] | None:
    """What /metrics should say given each worker's `stats()` (JSON): this
    process's figures summed (or the largest, for a gauge combined by max);
    a shared store's figures once, as the store says them; a memory store's,
    per worker, combined like the others. None when the workers, read one
    after the other, saw the shared store differently (it moved meanwhile)."""
    stats = [as_stats(w) for w in workers]
    out: dict[Key, float] = {}
    for figure in FIGURES:
        if figure.name is None or figure.name in MOVING:
            continue
        name = PREFIX + figure.name + ("_total" if figure.kind == "counter" else "")
        per_label: dict[str | None, list[float]] = {}
        for one in stats:
            for label, value in figure.values(one).items():  # type: ignore[arg-type]
                per_label.setdefault(label, []).append(value)
        for label, values in per_label.items():
            labels = {"site_uuid": site_uuid}
            if label is not None:
                labels[str(figure.label)] = label
            if figure.scope == "store" and shared_store:
                if len(set(values)) != 1:
                    return None
                value = values[0]
            elif figure.kind == "gauge" and figure.combine == "max":
                value = max(values)
            else:
                value = sum(values)
            out[(name, tuple(sorted(labels.items())))] = value
    return out


def moving(page: dict[Key, float], name: str) -> list[float]:
    """The values of a figure that moves with the clock alone."""
    return [v for (n, _), v in page.items() if n == PREFIX + name]


def value(page: dict[Key, float], name: str, **labels: str) -> float:
    """One sample of a page (0 when absent: a counter not yet seen)."""
    for (n, pairs), v in page.items():
        if n == name and all(dict(pairs).get(k) == x for k, x in labels.items()):
            return v
    return 0.0
