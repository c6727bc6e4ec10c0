"""The emulator's inbox in headless Chromium.

What the library sends (events through `Client`, a subscriber import and a
transactional email through `BentoAPI`) shows up at `/_emulator/`; a new
event appears live without a reload; hostile values stay text; the email's
HTML is inside a sandboxed iframe; the clear buttons clear.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import bento_track
from bento_track.api import BentoAPI
from bento_track.emulator import EmulatorServer
from bento_track.models import Email

SECRET = "sk_browser_test_secret"
HOSTILE_TYPE = "<script>window.__pwned=1</script>"
HOSTILE_EMAIL = "<svg/onload=window.__pwned=1>@example.com"
HOSTILE_TEXT = '<img src=x onerror="window.__pwned=1">'
EMAIL_HTML = (
    "<h1>Hi {{ name }}</h1><p>Thanks for signing up.</p>"
    # Would set a flag on the page if the preview ran scripts or shared its origin.
    "<script>window.parent.__pwned=1; window.top.__pwned=1</script>"
)
WAIT = 10.0  # seconds: generous, for a loaded CI machine; live updates get 2 s


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, secret_key=SECRET) as running:
        yield running


def send_events(
    server: EmulatorServer, *events: tuple[str, str, dict[str, Any]]
) -> None:
    """Through the library: `track()` then `flush()`, as an app does."""
    client = bento_track.Client(
        **server.client_kwargs(), flush_interval=0.05, environ={}
    )
    try:
        for kind, email, details in events:
            client.track(kind, email=email, details=details)
        assert client.flush(timeout=10), client.stats()
    finally:
        client.shutdown(timeout=5)


def send_subscribers_and_email(server: EmulatorServer) -> None:
    with BentoAPI(**server.client_kwargs()) as api:
        imported = api.import_subscribers(
            [
                {"email": "walter@example.com", "first_name": "Walter"},
                {"email": "skyler@example.com", "first_name": HOSTILE_TEXT},
            ]
        )
        assert 2 == imported.results
        sent = api.send_emails(
            [
                Email(
                    to="jesse@example.com",
                    from_="hello@example.com",
                    subject="Welcome, {{ name }}",
                    html_body=EMAIL_HTML,
                    transactional=True,
                    personalizations={"name": "Jesse"},
                )
            ]
        )
        assert 1 == sent.results


def wait(
    browser: Any, condition: Callable[[Any], Any], message: str, timeout: float = WAIT
) -> Any:
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    # The page re-renders its list when data changes: an element found a moment
    # ago may be gone, so look again until the deadline.
    return WebDriverWait(
        browser,
        timeout,
        poll_frequency=0.05,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    ).until(condition, message)


def by_css(browser: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, selector))


def open_inbox(browser: Any, server: EmulatorServer) -> None:
    # The browser outlives each module's emulator: leave the last page (whose
    # polls would fail once its server stopped) and forget what it logged, so
    # `console_errors` reads this page's entries only.
    browser.get("about:blank")
    browser.get_log("browser")
    browser.get(server.url + "/_emulator/")
    wait(
        browser,
        lambda b: "live" in b.find_element("id", "status").text,
        "the page never went live",
    )


def open_tab(browser: Any, kind: str, rows: int) -> list[Any]:
    """Click a tab and wait until it lists `rows` records; return them."""
    wait(
        browser,
        lambda b: b.find_element("id", f"tab-{kind}").click() or True,
        f"no {kind} tab",
    )
    selector = "#list > .mail" if kind == "emails" else "#list > .rec"

    def listed(b: Any) -> tuple[list[Any]] | None:
        if b.find_element("id", "list").get_dom_attribute("data-kind") != kind:
            return None
        found = by_css(b, selector)
        return (found,) if len(found) == rows else None  # (found,): true when empty

    [found] = wait(browser, listed, f"the {kind} tab never listed {rows} records")
    return found


def no_markup_from_data(browser: Any) -> None:
    """Hostile values were put in the page as text: no element came of them,
    and none of their handlers ran."""
    assert [] == by_css(
        browser,
        "#list script, #list img, #list svg, #viewer script, #viewer img, #viewer svg",
    )
    assert browser.execute_script("return window.__pwned") is None


def console_errors(browser: Any) -> list[str]:
    """Script errors and CSP violations the page logged (a missing favicon is
    not one: the emulator serves none)."""
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
    ]


def screenshot(
    browser: Any, artifacts: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> Path:
    path = artifacts / name
    assert browser.save_screenshot(str(path)), path
    with capsys.disabled():  # the path belongs in the CI log, captured or not
        print(f"\ninbox screenshot: {path}")
    return path


def test_inbox_shows_what_the_library_sent(
    browser: Any,
    server: EmulatorServer,
    artifacts: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    send_events(
        server,
        ("signup", "jesse@example.com", {"plan": "pro"}),
        (HOSTILE_TYPE, HOSTILE_EMAIL, {"note": HOSTILE_TEXT}),
    )
    send_subscribers_and_email(server)
    open_inbox(browser, server)

    # Events, newest first, hostile values as their own text.
    hostile, signup = open_tab(browser, "events", 2)
    assert "signup" in signup.text and "jesse@example.com" in signup.text
    assert HOSTILE_TYPE in hostile.text and HOSTILE_EMAIL in hostile.text
    assert "<img src=x onerror=" in hostile.text
    hostile.find_element("css selector", "summary").click()
    json_text = wait(
        browser,
        lambda b: hostile.find_element("css selector", "pre.json").text,
        "no JSON",
    )
    assert f'"type": "{HOSTILE_TYPE}"' in json_text
    no_markup_from_data(browser)
    screenshot(browser, artifacts, "inbox-events.png", capsys)

    # Subscribers: the two imported, and the two the events created.
    subscribers = "\n".join(r.text for r in open_tab(browser, "subscribers", 4))
    for text in (
        "walter@example.com",
        "Walter",
        "skyler@example.com",
        HOSTILE_TEXT,
        HOSTILE_EMAIL,
    ):
        assert text in subscribers
    no_markup_from_data(browser)

    # The email: subject with its personalization, from, to, sandboxed preview.
    [listed] = open_tab(browser, "emails", 1)
    assert "Welcome, Jesse" in listed.text
    assert (
        "Welcome, Jesse"
        == browser.find_element("css selector", "#viewer h2.subject").text
    )
    assert (
        "hello@example.com"
        == browser.find_element("css selector", "#viewer dd.from").text
    )
    assert (
        "jesse@example.com"
        == browser.find_element("css selector", "#viewer dd.to").text
    )
    assert (
        "<h1>Hi {{ name }}</h1>"
        in browser.find_element("css selector", "#viewer pre.source").text
    )
    [frame] = by_css(browser, "#viewer iframe")
    sandbox = frame.get_dom_attribute("sandbox")
    assert sandbox is not None, "the preview iframe is not sandboxed"
    assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
    browser.switch_to.frame(frame)
    try:
        heading = wait(
            browser, lambda b: b.find_element("tag name", "h1").text, "empty preview"
        )
        assert "Hi Jesse" == heading
    finally:
        browser.switch_to.default_content()
    no_markup_from_data(browser)
    screenshot(browser, artifacts, "inbox-email.png", capsys)

    # The request log, each request with its status.
    requests = open_tab(browser, "requests", 3)
    assert all("200" in r.text for r in requests)
    assert all("/api/v1/batch/" in r.text for r in requests)

    assert SECRET not in browser.page_source
    no_markup_from_data(browser)
    assert [] == console_errors(browser)


def test_new_event_appears_live_without_reload(
    browser: Any, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    send_events(server, ("first", "jesse@example.com", {}))
    open_inbox(browser, server)
    open_tab(browser, "events", 1)
    browser.execute_script("window.__sameDocument = 42")

    send_events(server, ("live.event", "hank@example.com", {"n": 2}))
    sent = time.monotonic()
    rows = wait(
        browser,
        lambda b: (found := by_css(b, "#list > .rec")) and len(found) == 2 and found,
        "the new event did not appear within 2 s",
        timeout=2.0,
    )
    took = time.monotonic() - sent

    assert "live.event" in rows[0].text and "hank@example.com" in rows[0].text
    assert "2" == browser.find_element("css selector", "#tab-events .count").text
    assert 42 == browser.execute_script("return window.__sameDocument"), (
        "the page reloaded"
    )
    assert took < 2.0
    with capsys.disabled():
        print(f"\nnew event appeared in the inbox {took:.2f} s after flush()")


def test_filters_narrow_the_list(browser: Any, server: EmulatorServer) -> None:
    from selenium.webdriver.support.ui import Select

    send_events(
        server,
        ("signup", "jesse@example.com", {"plan": "pro"}),
        ("signup", "walter@example.com", {"plan": "free"}),
        ("purchase.done", "walter@example.com", {"sku": "blue-42"}),
    )
    open_inbox(browser, server)
    open_tab(browser, "events", 3)

    def shown(b: Any) -> list[str]:
        return [r.text for r in by_css(b, "#list > .rec")]

    Select(browser.find_element("id", "filter-type")).select_by_value("signup")
    wait(browser, lambda b: len(shown(b)) == 2, "type filter")
    browser.find_element("id", "filter-email").send_keys("walter")
    wait(browser, lambda b: len(shown(b)) == 1, "email filter")
    assert "walter@example.com" in shown(browser)[0] and "signup" in shown(browser)[0]

    Select(browser.find_element("id", "filter-type")).select_by_value("")
    browser.find_element("id", "filter-email").clear()
    browser.find_element("id", "filter-search").send_keys("BLUE-42")
    wait(browser, lambda b: len(shown(b)) == 1, "search")
    assert "purchase.done" in shown(browser)[0]


def test_clear_buttons(browser: Any, server: EmulatorServer) -> None:
    send_events(server, ("signup", "jesse@example.com", {}))
    send_subscribers_and_email(server)
    open_inbox(browser, server)
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
    assert [] == server.inspect.requests()
