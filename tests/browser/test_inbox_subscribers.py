"""The inbox's subscribers tab in headless Chromium: each subscriber's
fields (name = value), tags (one chip each) and when it last changed; an
upsert that changes a subscriber updates its row live, highlighted; a
hostile field value stays text; the page logs no CSP violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import bento_track
from bento_track.emulator import EmulatorServer

from .test_inbox_browser import (
    HOSTILE_TEXT,
    by_css,
    console_errors,
    no_markup_from_data,
    open_inbox,
    open_tab,
    screenshot,
    server,  # noqa: F401 (a fixture)
    wait,
)


def upsert(emulator: EmulatorServer, *updates: dict[str, Any]) -> None:
    """Through the library's pipeline, as an app's user saves do."""
    client = bento_track.Client(
        **emulator.client_kwargs(), flush_interval=0.05, environ={}
    )
    try:
        for update in updates:
            client.upsert_subscriber(**update)
        assert client.flush(timeout=10), client.stats()
    finally:
        client.shutdown(timeout=5)


def row_of(browser: Any, email: str) -> Any:
    [row] = [r for r in by_css(browser, "#list > .rec") if email in r.text]
    return row


def test_subscribers_show_fields_tags_and_when_they_changed(
    browser: Any,
    server: EmulatorServer,  # noqa: F811
    artifacts: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    upsert(
        server,
        {
            "email": "ann@example.com",
            "fields": {"first_name": "Ann", "plan": "pro", "company": "Acme"},
            "tags": ["customer", "beta"],
        },
        {"email": "bob@example.com", "fields": {"note": HOSTILE_TEXT}},
    )
    open_inbox(browser, server)
    open_tab(browser, "subscribers", 2)

    ann = row_of(browser, "ann@example.com")
    fields = [f.text for f in ann.find_elements("css selector", ".cell.fields .field")]
    assert fields == ["plan = pro", "company = Acme"]
    tags = [t.text for t in ann.find_elements("css selector", ".cell.tags .tag")]
    assert tags == ["customer", "beta"]
    changed = ann.find_element("css selector", ".cell.changed")
    assert changed.text.startswith("changed ")
    first_title = changed.get_attribute("title")
    assert first_title.startswith("created ") and ", last changed " in first_title
    bob = row_of(browser, "bob@example.com")
    assert f"note = {HOSTILE_TEXT}" in bob.text
    no_markup_from_data(browser)

    # A change arrives while the page is open: the row follows, highlighted.
    upsert(
        server,
        {
            "email": "ann@example.com",
            "fields": {"plan": "team"},
            "tags": ["admin"],
            "remove_tags": ["beta"],
        },
    )

    def changed_row(b: Any) -> Any:
        row = row_of(b, "ann@example.com")
        return row if "plan = team" in row.text else None

    ann = wait(browser, changed_row, "the subscriber's change never showed")
    tags = [t.text for t in ann.find_elements("css selector", ".cell.tags .tag")]
    assert tags == ["customer", "admin"]
    assert "fresh" in ann.get_attribute("class").split()
    title = ann.find_element("css selector", ".cell.changed").get_attribute("title")
    assert title != first_title and title.split(", ")[0] == first_title.split(", ")[0]
    # The last changed first: Ann, though Bob was created after her.
    assert [r.text.split()[0] for r in by_css(browser, "#list > .rec")] == [
        "ann@example.com",
        "bob@example.com",
    ]
    assert "last changed first" in browser.find_element("id", "note").text
    screenshot(browser, artifacts, "inbox-subscribers.png", capsys)
    assert console_errors(browser) == []
