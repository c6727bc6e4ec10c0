"""A real Prometheus server (Debian's `prometheus`) scrapes the Flask app
under gunicorn -w 2 in multiprocess mode, with the example alerting rules
loaded; what it stored is read back through its HTTP API: every event both
workers delivered is in `bento_track_events_delivered_total`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx

from ..conftest import ROOT, free_port, wait_until
from .support import on_each_worker, start_gunicorn

RULES = ROOT / "examples" / "monitoring" / "alerts.yml"


def query(url: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(
        url + "/api/v1/query", params={"query": promql}, timeout=10, trust_env=False
    )
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def scalar(url: str, promql: str) -> float | None:
    result = query(url, promql)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_what_the_workers_delivered(
    emulator: Any, servers: Any, tmp_path: Path
) -> None:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: scripts/_system.sh installs it"
    site = start_gunicorn(servers, emulator, tmp_path)
    target = site.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        f"  - job_name: app\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    server = servers(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}"]
        + [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        cwd=tmp_path,
        log=tmp_path / "prometheus.log",
        url=f"http://127.0.0.1:{port}",
    )
    server.wait_http("/-/ready")

    on_each_worker(site, tmp_path, "/track?n=4")  # 4 events in each worker
    wait_until(lambda: len(emulator.inspect.events()) == 8, 30, "8 events")
    delivered = "sum(bento_track_events_delivered_total)"
    wait_until(lambda: scalar(server.url, delivered) == 8, 60, "Prometheus to see 8")

    assert scalar(server.url, 'up{job="app"}') == 1
    sites = query(server.url, "bento_track_events_delivered_total")
    assert [s["metric"]["site_uuid"] for s in sites] == [emulator.site_uuid]
    rules = httpx.get(server.url + "/api/v1/rules", timeout=10, trust_env=False)
    loaded = [r for g in rules.json()["data"]["groups"] for r in g["rules"]]
    assert len(loaded) == 6
    assert {r["health"] for r in loaded} <= {"ok", "unknown"}, loaded
    assert all(r["annotations"]["action"] for r in loaded)
