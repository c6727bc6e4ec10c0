"""A web page elsewhere cannot steer or read the emulator (issue 18).

Headless Chromium runs what an attacker's page would: from another loopback
port (another origin, though the same site), `fetch(..., {mode: "no-cors"})`
and `<form enctype="text/plain">` posts against reset, faults and
rate-limit; the emulator's state is the same afterwards, and the inbox
page's own clear buttons still work. A DNS-rebound name (Chromium's
resolver maps `evil.example` to 127.0.0.1) reads nothing either.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bento_track.emulator import EmulatorServer
from bento_track.emulator.store import KINDS

from .conftest import REBOUND_NAME
from .test_inbox_browser import (
    by_css,
    console_errors,
    open_inbox,
    open_tab,
    send_events,
    send_subscribers_and_email,
    wait,
)

PEOPLE = ("jesse@example.com", "walter@example.com", "skyler@example.com")

# Each write would change the state if it got through: a fault queued for
# 50 requests, a rate limit of 1 a day, everything reset.
ATTACK_JS = """
"use strict";
const EMULATOR = %(emulator)s;
const FAULT = '{"kind": "fail", "n": 50, "status": 503}';
const LIMIT = '{"requests": 1, "window_seconds": 86400}';

// fetch() in no-cors mode: the browser sends it, the page cannot read the
// answer. A string body goes as text/plain, a Blob without a type as none.
function noCors(path, body) {
  return fetch(EMULATOR + path, { method: "POST", mode: "no-cors", body })
    .then(() => "answered", (error) => "failed: " + error);
}

// A form posted into a hidden frame. With enctype text/plain, a field named
// '{"a": 1, "x": "' with the value '"}' is sent as the JSON {"a": 1, "x": "="}.
let frames = 0;
function form(path, enctype, name, value) {
  return new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.name = "sink" + frames++;
    document.body.append(frame);
    // The frame first loads about:blank, of this page's origin; the answer
    // to the form comes from the emulator's, which this page cannot read.
    frame.addEventListener("load", () => {
      try {
        void frame.contentWindow.location.href;
      } catch {
        resolve("loaded");
      }
    });
    const sender = document.createElement("form");
    sender.method = "POST";
    sender.enctype = enctype;
    sender.action = EMULATOR + path;
    sender.target = frame.name;
    const field = document.createElement("input");
    field.name = name;
    field.value = value;
    sender.append(field);
    document.body.append(sender);
    sender.submit();
  });
}

function asFormField(json) {
  return [json.slice(0, -1) + ', "x": "', '"}'];
}

window.attack = async function () {
  const attempts = [
    ["faults", "fetch text/plain", () => noCors("/faults", FAULT)],
    ["faults", "fetch blob", () => noCors("/faults", new Blob([FAULT]))],
    ["faults", "form text/plain", () => form("/faults", "text/plain", ...asFormField(FAULT))],
    ["faults", "form urlencoded", () => form("/faults", "application/x-www-form-urlencoded", FAULT, "")],
    ["rate-limit", "fetch text/plain", () => noCors("/rate-limit", LIMIT)],
    ["rate-limit", "fetch blob", () => noCors("/rate-limit", new Blob([LIMIT]))],
    ["rate-limit", "form text/plain", () => form("/rate-limit", "text/plain", ...asFormField(LIMIT))],
    ["reset", "fetch text/plain", () => noCors("/reset", "{}")],
    ["reset", "fetch empty", () => noCors("/reset", undefined)],
    ["reset", "form text/plain", () => form("/reset", "text/plain", "a", "b")],
  ];
  const results = [];
  for (const [target, how, run] of attempts) {
    results.push([target, how, await run()]);  // one at a time: counted in order
  }
  return results;
};
"""


class _AttackerPage(BaseHTTPRequestHandler):
    """Serves the attack page at `/` (the server's `page` attribute)."""

    def do_GET(self) -> None:  # the stdlib handler's name
        body = self.server.page.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0) as running:
        yield running


@pytest.fixture(autouse=True)
def blank_page(browser: Any, server: EmulatorServer) -> Iterator[None]:
    """Each test starts on a blank page with an empty console log, and
    leaves the inbox before its emulator stops (a poll that finds the
    server gone would log an error into the next test)."""
    browser.get("about:blank")
    console_errors(browser)
    yield
    browser.get("about:blank")
    console_errors(browser)


@pytest.fixture
def attacker(server: EmulatorServer) -> Iterator[str]:
    """The attack page's URL, on another loopback port than the emulator."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _AttackerPage)
    script = ATTACK_JS % {"emulator": json.dumps(server.url + "/_emulator")}
    httpd.page = f"<!doctype html><title>cats</title><script>{script}</script>"  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def fingerprint(server: EmulatorServer) -> dict[str, Any]:
    """Everything a control write could change (not the refusal counts)."""
    summary = server.inspect.summary()
    summary.pop("refused")
    return {
        "summary": summary,
        "records": {kind: server.inspect._list(kind) for kind in KINDS},
        "requests": server.inspect.requests(),
    }


def test_a_page_elsewhere_cannot_reset_or_fault_the_emulator(
    browser: Any, server: EmulatorServer, attacker: str
) -> None:
    send_events(server, ("signup", PEOPLE[0], {}))
    send_subscribers_and_email(server)
    server.inspect.set_rate_limit(100, 60.0)
    before = fingerprint(server)
    assert before["summary"]["counts"]["subscribers"] == 3  # something to lose

    browser.get(attacker)
    assert attacker.rstrip("/") != server.url  # another origin
    results = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.attack().then(done, (e) => done(String(e)));"
    )

    # Every attempt reached the emulator and was answered, and nothing
    # changed: data, faults, rate limit, request log. They were refused.
    assert isinstance(results, list) and len(results) == 10, results
    assert all(outcome in ("answered", "loaded") for *_, outcome in results), results
    assert before == fingerprint(server)
    assert {"queue": [], "reject": []} == server.inspect.faults()
    assert {"403": len(results)} == server.inspect.summary()["refused"]
    refused = console_errors(browser)  # the attack page's log, read and cleared
    assert len(refused) == 10 and all("status of 403" in m for m in refused), refused

    # The inbox's own buttons still write (its requests carry its own Origin),
    # and its account panel shows the refused attempts.
    open_inbox(browser, server)
    wait(
        browser,
        lambda b: "403×10" in b.find_element("id", "account").text,
        "the inbox does not show the refused requests",
    )
    open_tab(browser, "events", 1)
    wait(
        browser,
        lambda b: b.find_element("id", "clear-kind").click() or True,
        "no clear button",
    )
    open_tab(browser, "events", 0)
    assert [] == server.inspect.events()
    assert 3 == len(server.inspect.subscribers())  # only events were cleared
    wait(
        browser,
        lambda b: b.find_element("id", "clear-all").click() or True,
        "no clear-all button",
    )
    wait(
        browser,
        lambda b: all(c.text == "0" for c in by_css(b, "#tabs .count")),
        "clear everything left records",
    )
    assert [] == server.inspect.subscribers() == server.inspect.emails()
    assert {"403": 10} == server.inspect.summary()["refused"]  # none of ours
    assert [] == console_errors(browser)


def test_the_inbox_works_under_another_loopback_name(
    browser: Any, server: EmulatorServer
) -> None:
    """`localhost` is answered too, and the page's writes carry that origin."""
    send_events(server, ("signup", PEOPLE[0], {}))
    local = server.url.replace("127.0.0.1", "localhost")
    browser.get(local + "/_emulator/")
    wait(
        browser,
        lambda b: "live" in b.find_element("id", "status").text,
        "the page never went live on localhost",
    )
    open_tab(browser, "events", 1)
    wait(
        browser,
        lambda b: b.find_element("id", "clear-kind").click() or True,
        "no clear button",
    )
    open_tab(browser, "events", 0)

    assert [] == server.inspect.events()
    assert {} == server.inspect.summary()["refused"]
    assert [] == console_errors(browser)


def test_a_rebound_name_reads_nothing(browser: Any, server: EmulatorServer) -> None:
    """What a DNS-rebinding page sees: its own origin's name, resolved to
    the emulator's address. Every read is refused, with no address in it."""
    send_events(server, ("signup", PEOPLE[0], {}))
    send_subscribers_and_email(server)
    rebound = f"http://{REBOUND_NAME}:{server.port}"

    browser.get(rebound + "/_emulator/")
    page = browser.page_source
    # Same origin as the page: the script may read every answer it gets.
    answers = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const paths = arguments[0];
        // The API with the emulator's well-known default keys, as an
        // attacker would send them.
        const headers = {
          Accept: "application/json",
          Authorization: "Basic " + btoa("pk_emulator:sk_emulator"),
        };
        Promise.all(paths.map((path) =>
          fetch(path, { headers }).then(async (r) => [path, r.status, await r.text()])
        )).then(done, (e) => done(String(e)));
        """,
        [
            "/_emulator/",
            "/_emulator/subscribers",
            "/_emulator/events?meta=1",
            "/_emulator/emails?meta=1",
            "/_emulator/requests",
            "/api/v1/stats/site?site_uuid=emulator-site",
        ],
    )

    assert f"does not answer requests for host {REBOUND_NAME}" in page
    assert "@" not in page
    assert isinstance(answers, list) and len(answers) == 6, answers
    for path, status, text in answers:
        assert 421 == status, (path, text)
        assert "@" not in text and "example.com" not in text, (path, text)
    logged = console_errors(browser)  # read and cleared for the next test
    assert logged and all("status of 421" in m for m in logged), logged
    # The page and the six reads (a favicon request, if any, is refused too).
    assert server.inspect.summary()["refused"]["421"] >= 7
    assert [] == server.inspect.summary()["faults"]["queue"]
