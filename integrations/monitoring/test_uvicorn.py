"""A FastAPI app under uvicorn, scraped over HTTP while events flow to the
emulator: /metrics says what `stats()` says, figure by figure: delivered,
drops by reason, a 429 (the emulator's `fail_next`), events waiting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..conftest import BIN, free_port, server_env, wait_until
from .support import HERE, MOVING, PREFIX, expected, get, scrape, value
from .workload import REFUSED


def agreed(site_url: str, site_uuid: str, until: Any) -> dict:
    """The page once it says what stats() says and `until(page)` holds."""
    box: dict[str, Any] = {}

    def agrees() -> bool:
        stats = get(site_url + "/stats")["stats"]
        want = expected(site_uuid, [stats], shared_store=False)
        page = scrape(site_url + "/metrics")
        box.update(page=page, want=want)
        return until(page) and all(page.get(k) == v for k, v in want.items())

    try:
        wait_until(agrees, 30, "/metrics to agree with stats()")
    except AssertionError:
        if "page" not in box:
            raise
        page, want = box["page"], box["want"]
        diff = {k: (page.get(k), v) for k, v in want.items() if page.get(k) != v}
        raise AssertionError(f"/metrics vs stats(): {diff}") from None
    moving = {PREFIX + name for name in MOVING}
    assert {k for k in box["page"] if k[0] not in moving} == set(box["want"])
    return box["page"]


def test_fastapi_metrics_under_uvicorn(
    emulator: Any, servers: Any, tmp_path: Path
) -> None:
    emulator.inspect.reject_events(type=REFUSED)
    port = free_port()
    site = servers(
        [str(BIN / "uvicorn"), "fastapi_app:app", "--host", "127.0.0.1"]
        + ["--port", str(port)],
        env=server_env(emulator),
        cwd=HERE,
        log=tmp_path / "uvicorn.log",
        url=f"http://127.0.0.1:{port}",
    )
    site.wait_http("/stats")
    uuid = emulator.site_uuid

    get(site.url + "/track?n=5&invalid=2&refused=1")
    page = agreed(
        site.url, uuid, lambda p: value(p, PREFIX + "events_delivered_total") == 5
    )
    dropped = PREFIX + "events_dropped_total"
    assert value(page, dropped, reason="invalid") == 2
    assert value(page, dropped, reason="rejected") == 1
    assert value(page, PREFIX + "queue_events") == 0
    assert value(page, PREFIX + "last_success_timestamp_seconds") > 0

    emulator.inspect.fail_next(1, status=429, retry_after=60)
    get(site.url + "/track?n=3")
    wait_until(lambda: emulator.inspect.request_counts().get("429") == 1, 30, "429")
    page = agreed(site.url, uuid, lambda p: value(p, PREFIX + "paused") == 1)
    assert value(page, PREFIX + "retries_total") == 1
    assert value(page, PREFIX + "requests_total", status="429") == 1
    assert value(page, PREFIX + "queue_events") == 3
    assert value(page, PREFIX + "store_events") == 3
    assert value(page, PREFIX + "events_delivered_total") == 5
