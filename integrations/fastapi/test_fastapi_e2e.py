"""A FastAPI app under uvicorn: a route template rule, `identify=` from a
header, the `identity` / `require_identity` dependencies, `track()` in an
async and a sync view, and SIGTERM with a request in flight losing nothing
(the lifespan flushes at shutdown, after uvicorn drained its requests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from ..conftest import BIN, InFlight, events_by_type, free_port, server_env

HERE = Path(__file__).resolve().parent


def test_fastapi_under_uvicorn(emulator: Any, servers: Any, tmp_path: Path) -> None:
    port = free_port()
    site = servers(
        [
            str(BIN / "uvicorn"),
            "api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=server_env(emulator, HOLD_DIR=str(tmp_path)),
        cwd=HERE,
        log=tmp_path / "uvicorn.log",
        url=f"http://127.0.0.1:{port}",
    )
    site.wait_http("/me")
    ann = {"x-user-email": "ann@example.com"}
    bob = {"x-user-email": "bob@example.com"}

    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as http:
        assert http.get("/me").json() == {"email": None}
        assert http.get("/me", headers=ann).json() == {"email": "ann@example.com"}
        assert http.get("/account").status_code == 401
        assert http.get("/account", headers=bob).json() == {"email": "bob@example.com"}
        assert http.post("/orders/7", headers=ann).json() == {"order": 7}
        assert http.post("/orders/8").status_code == 200  # anonymous: no event
        assert http.post("/orders/x", headers=ann).status_code == 422  # no event
        assert http.delete("/orders/7", headers=bob).json() == {"cancelled": 7}
        assert emulator.inspect.events() == []  # held until shutdown
        finish = InFlight(tmp_path).start(lambda: http.get("/held", headers=ann))
        site.terminate()
        assert finish().json() == {"exported": True}
    assert site.stop() in (0, -15), site.output()  # uvicorn re-raises SIGTERM
    events = emulator.inspect.events()
    got = events_by_type(events)

    assert sorted((e["type"], e["email"]) for e in events) == [
        ("account.viewed", "bob@example.com"),
        ("order.cancelled", "bob@example.com"),
        ("order.created", "ann@example.com"),
        ("refund.started", "bob@example.com"),
        ("report.exported", "ann@example.com"),
    ], site.output()
    [created] = got["order.created"]
    assert created["details"]["route"] == "/orders/{order_id}"
    assert created["details"]["path"] == "/orders/7"
    assert (created["details"]["method"], created["details"]["status"]) == ("POST", 200)
    assert got["account.viewed"][0]["fields"] == {"plan": "pro"}
    assert got["refund.started"][0]["details"] == {"order": 7}
    assert "Traceback" not in site.output(), site.output()
