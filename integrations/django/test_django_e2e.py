"""A Django site wired only as the README says (the app, the middleware,
`BENTO_TRACK`), served by gunicorn with 2 workers (WSGI) and by uvicorn
(ASGI), driven over loopback like a browser: anonymous visits, failed
logins, a login, a rule, an explicit `track()` in a sync and an async view,
a logout. The site flushes only at exit (flush_interval 60 s), so what the
emulator holds after SIGTERM is what SIGTERM did not lose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import InFlight, events_by_type
from .sites import make_database, start

ANN = "ann@example.com"


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_database("shop", tmp_path_factory.mktemp("shop") / "shop.sqlite3")


def login(http: httpx.Client) -> None:
    http.get("/login/")
    form = {"csrfmiddlewaretoken": http.cookies["csrftoken"]}
    ok = http.post(
        "/login/", data={**form, "username": "ann", "password": "s3cret-pass"}
    )
    assert ok.status_code == 302, ok.text


def browse(url: str) -> None:
    """What a visitor does, with the checks a browser would notice."""
    with httpx.Client(base_url=url, trust_env=False, timeout=10) as http:
        assert http.get("/").text == "home"  # anonymous: the rule has no one
        http.get("/login/")
        token = http.cookies["csrftoken"]
        form = {"csrfmiddlewaretoken": token}
        # Failed logins: an email typed (tracked), a plain name (not).
        bad = http.post("/login/", data={**form, "username": ANN, "password": "x"})
        assert bad.status_code == 200
        http.post("/login/", data={**form, "username": "nobody", "password": "x"})

        ok = http.post(
            "/login/", data={**form, "username": "ann", "password": "s3cret-pass"}
        )
        assert ok.status_code == 302 and ok.headers["location"] == "/account/"
        headers = {"X-CSRFToken": http.cookies["csrftoken"]}
        assert http.get("/account/").text == "hello ann"
        assert http.get("/").status_code == 200
        assert http.post("/orders/7/", headers=headers).json()["order"] == 7
        assert http.post("/orders/7/pay/", headers=headers).json()["paid"] is True
        assert http.get("/profile/").text == "profile of ann"
        out = http.post("/logout/", headers=headers)
        assert out.status_code == 302

        headers = {"X-CSRFToken": http.cookies["csrftoken"]}
        assert http.get("/").status_code == 200  # anonymous again
        assert http.post("/orders/8/", headers=headers).status_code == 200


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_django_site_delivers_everything(
    kind: str, shop_db: str, emulator: Any, servers: Any, tmp_path: Path
) -> None:
    site = start(
        "shop",
        kind,
        emulator,
        servers,
        tmp_path / f"{kind}.log",
        ready="/login/",
        lifespan=False,
        graceful_timeout=10,
        SHOP_DB=shop_db,
        HOLD_DIR=str(tmp_path),
    )

    browse(site.url)
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as second:
        login(second)  # a second visit, whose request SIGTERM catches in flight
        assert emulator.inspect.events() == []  # held until exit (flush_interval 60)
        finish = InFlight(tmp_path).start(lambda: second.get("/held/"))
        site.terminate()
        assert finish().text == "exported"
    # uvicorn re-raises the SIGTERM it handled once drained: -15 is its clean exit.
    assert site.stop() in ((0,) if kind == "gunicorn" else (0, -15)), site.output()
    events = emulator.inspect.events()
    got = events_by_type(events)

    assert sorted((e["type"], e["email"]) for e in events) == sorted(
        [
            ("user.login_failed", ANN),
            ("user.logged_in", ANN),
            ("home.viewed", ANN),
            ("order.updated", ANN),
            ("order.paid", ANN),
            ("profile.viewed", ANN),
            ("user.logged_out", ANN),
            ("user.logged_in", ANN),
            ("report.exported", ANN),
        ]
    ), site.output()
    [updated] = got["order.updated"]
    assert updated["details"]["route"] == "/orders/<int:pk>/"
    assert updated["details"]["path"] == "/orders/7/"
    assert (updated["details"]["method"], updated["details"]["status"]) == ("POST", 200)
    assert got["home.viewed"][0]["details"]["route"] == "/"
    [paid] = got["order.paid"]
    assert paid["fields"] == {"plan": "pro"}
    assert paid["details"] == {"order": 7, "amount": 42.5}
    assert got["profile.viewed"][0]["details"] == {"async": True}
    assert got["report.exported"][0]["details"] == {"rows": 3}
    assert "Traceback" not in site.output(), site.output()
