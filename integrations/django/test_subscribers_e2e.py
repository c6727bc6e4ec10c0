"""Django's users as Bento's subscribers (`BENTO_TRACK["subscribers"]`),
under real servers (gunicorn with 2 workers, uvicorn) against the emulator:
a user's life (created, plan changed through their profile, a company
through a foreign key, email changed, deactivated) ends as one subscriber
at the new address with the new plan, unsubscribed; a save in a rolled-back
transaction sends nothing; a user saved 100 times in one second with a
flush interval of 1 s costs one upsert row; a login's `last_login` save
sends nothing; a deleted user is unsubscribed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import wait_until
from . import sites
from .sites import make_database

MARKER = "marker@example.com"


@pytest.fixture
def members_db(tmp_path: Path) -> str:
    return make_database("members", tmp_path / "members.sqlite3")


def start(kind: str, emulator: Any, servers: Any, tmp_path: Path, **env: str) -> Any:
    return sites.start(
        "members",
        kind,
        emulator,
        servers,
        tmp_path / f"{kind}.log",
        ready="/track/?n=0",
        lifespan=False,
        **env,
    )


def people(emulator: Any) -> dict[str, dict[str, Any]]:
    """The emulator's subscribers by email (the markers' one left out)."""
    return {
        s["email"]: s for s in emulator.inspect.subscribers() if s["email"] != MARKER
    }


def subscriber_posts(emulator: Any) -> list[dict[str, Any]]:
    return [
        r
        for r in emulator.inspect.requests()
        if r["path"].endswith("/batch/subscribers")
    ]


def marked(emulator: Any, step: str) -> None:
    """Wait for the view's marker: what it queued before is sent by then."""
    wait_until(
        lambda: any(
            e["type"] == "test.marker" and e["details"]["step"] == step
            for e in emulator.inspect.events()
        ),
        20,
        f"the marker of {step}",
    )


def shows(emulator: Any, email: str, **expected: Any) -> dict[str, Any]:
    """Wait until the subscriber `email` has `expected` (fields, or the
    top-level keys first_name, unsubscribed, ...)."""

    def match() -> dict[str, Any] | None:
        person = people(emulator).get(email)
        if person is None:
            return None
        for key, want in expected.items():
            if key == "unsubscribed":
                if bool(person["unsubscribed_at"]) != want:
                    return None
            elif key in person:
                if person[key] != want:
                    return None
            elif person["fields"].get(key) != want:
                return None
        return person

    return wait_until(match, 20, f"{email} to show {expected}")  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_a_users_life_ends_as_one_subscriber(
    kind: str, members_db: str, emulator: Any, servers: Any, tmp_path: Path
) -> None:
    site = start(kind, emulator, servers, tmp_path, MEMBERS_DB=members_db)
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as http:
        ann = {"username": "ann", "email": "ann@example.com", "first_name": "Ann"}
        uid = http.post("/users/", data=ann).json()["id"]
        shows(emulator, "ann@example.com", first_name="Ann", plan="free")

        http.post(f"/users/{uid}/plan/", data={"plan": "pro"})  # the profile
        shows(emulator, "ann@example.com", plan="pro")
        http.post(f"/users/{uid}/company/", data={"name": "Acme"})  # profile.company
        shows(emulator, "ann@example.com", company="Acme")

        before = len(subscriber_posts(emulator))
        answer = http.post(f"/users/{uid}/rollback/?marker=rollback").json()
        assert answer == {"id": uid, "rolled_back": True}
        marked(emulator, "rollback")
        assert len(subscriber_posts(emulator)) == before  # nothing sent
        assert "rolled.back@example.com" not in people(emulator)

        http.post(f"/users/{uid}/email/", data={"email": "ann.lee@example.com"})
        shows(emulator, "ann.lee@example.com", first_name="Ann", plan="pro")
        http.post(f"/users/{uid}/plan/", data={"plan": "team"})
        shows(emulator, "ann.lee@example.com", plan="team")
        http.post(f"/users/{uid}/deactivate/")
        shows(emulator, "ann.lee@example.com", unsubscribed=True)

    [(email, ann_now)] = people(emulator).items()  # one subscriber: no duplicate
    assert email == "ann.lee@example.com"
    assert ann_now["first_name"] == "Ann" and ann_now["tags"] == ["member"]
    assert ann_now["fields"] == {"plan": "team", "company": "Acme"}
    assert [(c["command"], c["email"]) for c in emulator.inspect.commands()] == [
        ("change_email", "ann@example.com"),
        ("unsubscribe", "ann.lee@example.com"),
    ]
    assert {r["status"] for r in emulator.inspect.requests()} == {200}
    # uvicorn re-raises the SIGTERM it handled once drained: -15 is its clean exit.
    assert site.stop() in ((0,) if kind == "gunicorn" else (0, -15)), site.output()
    assert "Traceback" not in site.output(), site.output()


def test_a_user_saved_100_times_in_a_second_costs_one_row(
    members_db: str, emulator: Any, servers: Any, tmp_path: Path
) -> None:
    # An interval a loaded 2-core machine's 100 saves fit in (1.5 s seen).
    site = start(
        "gunicorn",
        emulator,
        servers,
        tmp_path,
        MEMBERS_DB=members_db,
        MEMBERS_FLUSH="3",
    )
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as http:
        bob = {"username": "bob", "email": "bob@example.com", "first_name": "Bob"}
        uid = http.post("/users/?marker=created", data=bob).json()["id"]
        marked(emulator, "created")
        before = len(subscriber_posts(emulator))

        saved = http.post(f"/users/{uid}/save-many/?n=100&marker=saved").json()
        assert saved["seconds"] < 3.0, saved  # 100 saves within one interval
        marked(emulator, "saved")
        [post] = subscriber_posts(emulator)[before:]
        assert (post["count"], post["status"]) == (1, 200)  # one row
        shows(emulator, "bob@example.com", last_name="Save 99")

        # A login saves only last_login: nothing for Bento.
        http.post(f"/users/{uid}/login/?marker=login")
        marked(emulator, "login")
        assert len(subscriber_posts(emulator)) == before + 1

        http.post(f"/users/{uid}/delete/?marker=deleted")
        marked(emulator, "deleted")
        shows(emulator, "bob@example.com", unsubscribed=True)
    print(
        f"100 saves took {saved['seconds']:.3f} s: one /batch/subscribers "
        f"request of {post['count']} row"
    )
    assert [c["command"] for c in emulator.inspect.commands()] == ["unsubscribe"]
    assert site.stop() == 0, site.output()
