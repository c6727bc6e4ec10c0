"""Django's mail through the Bento email backend, under real servers
(gunicorn with 2 workers, uvicorn), against the emulator: `send_mail`,
`EmailMultiAlternatives`, a message to three people, `mail_admins`, the
password-reset views end to end (the link in the email works), an
attachment refused (and with `fail_silently`, 0 and a warning), and 130
messages in one `send_messages()` from two processes at once, within one
budget shared with the events those processes deliver."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import max_in_window

from ..conftest import wait_until
from . import sites
from .sites import make_database

AUTHOR = "hello@example.com"


@pytest.fixture
def mail_db(tmp_path: Path) -> str:
    """A fresh database per test (the password-reset test changes Ann's)."""
    return make_database("mailsite", tmp_path / "mailsite.sqlite3")


def start(kind: str, emulator: Any, servers: Any, tmp_path: Path, **env: str) -> Any:
    return sites.start(
        "mailsite",
        kind,
        emulator,
        servers,
        tmp_path / f"{kind}.log",
        ready="/login/",
        lifespan=True,
        **env,
    )


def emails_to(emulator: Any, address: str) -> list[dict[str, Any]]:
    return [e for e in emulator.inspect.emails() if e["to"] == address]


def email_posts(emulator: Any) -> list[dict[str, Any]]:
    return [r for r in emulator.inspect.requests() if r["path"].endswith("/emails")]


def reset_password(http: httpx.Client, emulator: Any) -> str:
    """Django's password-reset views, as a person uses them; the link
    comes from the email the emulator received."""
    http.get("/password-reset/")
    form = {"csrfmiddlewaretoken": http.cookies["csrftoken"]}
    asked = http.post("/password-reset/", data={**form, "email": "ann@example.com"})
    assert (
        asked.status_code == 302
        and asked.headers["location"] == "/password-reset/done/"
    )
    [email] = emails_to(emulator, "ann@example.com")
    host = http.base_url.netloc.decode()  # Django's RequestSite: host and port
    assert email["subject"] == f"Reset your password on {host}"
    assert email["from"] == AUTHOR and email["transactional"] is True
    # The HTML alternative is the body; the inbox previews it.
    assert email["html_body"].startswith("<p>Hi ann,</p>")
    link = re.search(r'href="(http://[^"]+)"', email["html_body"])
    assert link is not None, email
    path = httpx.URL(link[1]).path
    form_page = http.get(path, follow_redirects=True)
    assert "new_password1" in form_page.text
    token = {"csrfmiddlewaretoken": http.cookies["csrftoken"]}
    done = http.post(
        form_page.url.path,
        data={**token, "new_password1": "new-pass-2", "new_password2": "new-pass-2"},
    )
    assert done.status_code == 302 and done.headers["location"] == "/reset/done/"
    return path


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_djangos_mail_arrives_in_the_emulator(
    kind: str, mail_db: str, emulator: Any, servers: Any, tmp_path: Path
) -> None:
    site = start(kind, emulator, servers, tmp_path, MAILSITE_DB=mail_db)
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as http:
        assert http.post("/mail/text/").json() == {"sent": 1}
        assert http.post("/mail/html/").json() == {"sent": 1}
        three = http.post("/mail/three/").json()
        assert three == {
            "sent": 1,
            "recipients": {
                "a@example.com": "queued",
                "b@example.com": "queued",
                "c@example.com": "queued",
            },
        }
        http.post("/mail/admins/")
        reset_password(http, emulator)
        # The new password works.
        http.get("/login/")
        login = {"csrfmiddlewaretoken": http.cookies["csrftoken"]}
        logged = http.post(
            "/login/", data={**login, "username": "ann", "password": "new-pass-2"}
        )
        assert logged.status_code == 302, logged.text

        refused = http.post("/mail/attachment/").json()
        assert refused["error"].startswith("UnsupportedFeatureError: ")
        assert "cannot carry attachments (invoice.pdf)" in refused["error"]
        silent = http.post("/mail/attachment/?silent=1").json()
        assert silent == {"sent": 0, "status": ["invalid"]}

    [receipt] = emails_to(emulator, "cy@example.com")
    assert receipt == {
        "to": "cy@example.com",
        "from": AUTHOR,
        "subject": "Your receipt",
        "html_body": '<div style="white-space: pre-wrap">Order A-1001: 2 × '
        "&lt;Widget&gt;\nTotal: $42.50\n\nThanks!</div>",
        "transactional": True,
    }
    [welcome] = emails_to(emulator, "bob@example.com")
    assert (welcome["subject"], welcome["html_body"], welcome["personalizations"]) == (
        "Welcome, {{ name }}",
        "<h1>Welcome, {{ name }}</h1>",
        {"name": "Bob"},
    )
    team = {
        e["to"]: (e["personalizations"]["name"], e["transactional"])
        for e in emulator.inspect.emails()
        if e["subject"] == "Team update"
    }
    assert team == {
        "a@example.com": ("team", False),
        "b@example.com": ("Bee", False),
        "c@example.com": ("team", False),
    }
    [admin] = emails_to(emulator, "ops@example.com")
    assert (admin["from"], admin["subject"]) == (
        "errors@example.com",
        "[Django] Disk almost full",
    )
    assert "94% used on /var" in admin["html_body"]
    # Nothing of the invoice was sent; the silent one was said in the log.
    assert not [e for e in emulator.inspect.emails() if e["subject"] == "Your invoice"]
    wait_until(
        lambda: (
            "email not sent: Bento's /batch/emails cannot carry attachments"
            in site.output()
        ),
        10,
        "the warning of the silent failure",
    )
    assert {r["status"] for r in email_posts(emulator)} == {200}
    # The receipt, the welcome, three team updates, the admins' and the reset.
    assert len(emulator.inspect.emails()) == 7


def test_130_messages_in_one_call_within_one_budget(
    mail_db: str, emulator: Any, servers: Any, tmp_path: Path
) -> None:
    """Two requests at once, so each gunicorn worker sends 130 messages in
    one `send_messages()` (3 requests each) and delivers 3 events (one per
    request): 12 requests of one account, from two processes sharing a
    SQLite store, against an emulator that allows what the budget allows."""
    limit, window = 3, 1.0
    emulator.inspect.set_rate_limit(limit, window)
    try:
        site = start(
            "gunicorn",
            emulator,
            servers,
            tmp_path,
            MAILSITE_DB=mail_db,
            MAILSITE_RPM=str(limit),
            MAILSITE_WINDOW=str(window),
            MAILSITE_BATCH="1",
            BENTO_STORE=f"sqlite:///{tmp_path / 'bento.db'}",
        )
        answers: dict[str, Any] = {}

        def bulk(tag: str) -> None:
            with httpx.Client(base_url=site.url, trust_env=False, timeout=60) as http:
                answers[tag] = http.post(f"/mail/bulk/?n=130&events=3&tag={tag}").json()

        calls = [threading.Thread(target=bulk, args=(tag,)) for tag in ("x", "y")]
        for call in calls:
            call.start()
        for call in calls:
            call.join(90)
        assert answers == {
            "x": {"sent": 130, "statuses": ["queued"]},
            "y": {"sent": 130, "statuses": ["queued"]},
        }, site.output()
        assert site.stop() == 0, site.output()  # the exit flush delivers the rest
    finally:
        emulator.inspect.set_rate_limit(10_000, 60.0)

    posts = email_posts(emulator)
    assert sorted(r["count"] for r in posts) == [10, 10, 60, 60, 60, 60]
    assert len(emulator.inspect.emails()) == 260
    assert len(emulator.inspect.events()) == 6
    log = emulator.inspect.requests()
    assert len(log) == 12 and {r["status"] for r in log} == {200}, log
    assert max_in_window([r["time"] for r in log], window) <= limit
    # 12 requests at 3 a second cannot all arrive within 3 seconds.
    assert log[-1]["time"] - log[0]["time"] > 3 * window
