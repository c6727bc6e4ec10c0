"""examples/monitoring: the Grafana dashboard and the alerting rules name
only metrics the collector exports (no dead panel, no rule that never
fires), the rules pass `promtool check rules`, and their unit tests
(`promtool test rules`, one firing and one quiet case per alert) pass."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from prometheus_client import CollectorRegistry, generate_latest

import bento_track
from bento_track.integrations import prometheus

from ..conftest import ROOT

EXAMPLES = ROOT / "examples" / "monitoring"
DASHBOARD = EXAMPLES / "grafana-dashboard.json"
RULES = EXAMPLES / "alerts.yml"
RULE_TESTS = EXAMPLES / "alerts.test.yml"
METRIC = re.compile(r"\bbento_track_[a-z_]+\b")


def exported() -> set[str]:
    """The names a real scrape shows."""
    client = bento_track.Client(disabled=True)
    try:
        registry = CollectorRegistry()
        prometheus.register(registry, client)
        text = generate_latest(registry).decode()
    finally:
        client.shutdown(0)
    # The text format's TYPE lines name counters with their `_total`.
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def dashboard_queries() -> dict[str, list[str]]:
    """panel title -> its PromQL expressions (the site variable's query too)."""
    doc = json.loads(DASHBOARD.read_text())
    found = {
        p["title"]: [t["expr"] for t in p.get("targets", [])]
        for p in doc["panels"]
        if p["type"] != "row"
    }
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            found[f"${variable['name']}"] = [variable["definition"]]
    return found


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: scripts/_system.sh installs Debian's prometheus"
    return subprocess.run(
        [tool, *args], cwd=EXAMPLES, capture_output=True, text=True, timeout=120
    )


def test_every_metric_the_dashboard_and_rules_name_is_exported() -> None:
    names = exported()
    assert "bento_track_events_delivered_total" in names
    queries = dashboard_queries()
    assert len(queries) > 10
    for title, exprs in queries.items():
        used = {m for e in exprs for m in METRIC.findall(e)}
        assert used, f"panel {title!r} reads no bento_track metric"
        assert used <= names, f"panel {title!r}: not exported: {used - names}"
    in_rules = set(METRIC.findall(RULES.read_text()))
    assert in_rules and in_rules <= names, in_rules - names


def test_the_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_the_rules_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def alerts() -> dict[str, str]:
    """alert name -> its rule's text, the comment lines above it first."""
    found: dict[str, str] = {}
    comment: list[str] = []
    current: list[str] | None = None
    for line in RULES.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("- alert: "):
            current = [*comment, line]
            found[stripped.removeprefix("- alert: ")] = ""
            comment = []
        elif stripped.startswith("#"):
            comment.append(line)
            continue
        elif current is not None:
            current.append(line)
        if current is not None:
            found[next(reversed(found))] = "\n".join(current)
    return found


def test_each_alert_says_what_to_do_and_is_tested_firing_and_not() -> None:
    rules = alerts()
    assert len(rules) == 6
    cases: dict[str, set[str]] = {name: set() for name in rules}
    current = None
    for line in RULE_TESTS.read_text().splitlines():
        if m := re.match(r"\s+alertname: (\w+)", line):
            current = m.group(1)
        elif m := re.match(r"\s+exp_alerts:(.*)", line):
            assert current in cases, current
            cases[current].add("quiet" if m.group(1).strip() == "[]" else "fires")
    for name, text in rules.items():
        assert re.search(r'action: "[^"]{20,}"', text), f"{name}: no action"
        assert text.lstrip().startswith("#"), f"{name}: no comment saying what to do"
        assert cases[name] == {"fires", "quiet"}, (name, cases[name])
