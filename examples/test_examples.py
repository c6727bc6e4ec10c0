"""Every example, run as the command at its top says, against its embedded
emulator (no credentials): the web apps are driven over loopback and their
inbox inspected; the scripts run to the end and report what arrived."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import HERE, first_line, free_port, wait_until

NAMES = sorted(
    p.stem for p in HERE.glob("*.py") if p.stem not in ("conftest", "test_examples")
)


def received(inspector: Any, count: int) -> list[dict[str, Any]]:
    """The emulator's events once `count` arrived (examples flush every second)."""
    return wait_until(
        lambda: (lambda e: e if len(e) >= count else None)(inspector.events()),
        20,
        f"{count} events",
    )


def test_every_example_is_tested_and_says_how_to_run_it() -> None:
    assert NAMES == [
        "celery_app",
        "django_app",
        "django_email",
        "django_subscribers",
        "fastapi_app",
        "flask_app",
        "logging_handler",
        "starlette_app",
        "subscriber_sync",
        "transactional_email",
    ]
    for name in NAMES:
        doc = ast.get_docstring(ast.parse((HERE / f"{name}.py").read_text()))
        assert first_line(doc).startswith(f"python examples/{name}.py"), name
        assert name in globals().get(f"test_{name}").__name__  # type: ignore[union-attr]


def serve(run_example: Any, name: str) -> tuple[Any, Any, httpx.Client]:
    port = free_port()
    app = run_example(name, PORT=str(port))
    inspector = app.inspector()
    url = app.wait_for(r"App: (http://127\.0\.0\.1:\d+)")[1]
    assert url.endswith(str(port))
    app.wait_http(url)
    return app, inspector, httpx.Client(base_url=url, trust_env=False, timeout=10)


def test_starlette_app(run_example: Any) -> None:
    app, inspector, http = serve(run_example, "starlette_app")
    ann = {"x-user-email": "ann@example.com"}
    with http:
        assert http.post("/signup/pro", headers=ann).status_code == 201
        assert http.get("/welcome", headers=ann).json() == {"ok": True}
        http.post("/signup/free")  # anonymous: no event
    events = received(inspector, 2)
    assert sorted((e["type"], e["email"]) for e in events) == [
        ("account.signup", "ann@example.com"),
        ("welcome.viewed", "ann@example.com"),
    ], app.output()
    signup = next(e for e in events if e["type"] == "account.signup")
    assert signup["details"]["route"] == "/signup/{plan}"


def test_fastapi_app(run_example: Any) -> None:
    app, inspector, http = serve(run_example, "fastapi_app")
    ann = {"x-user-email": "ann@example.com"}
    with http:
        assert http.post("/orders/7", headers=ann).json() == {"order": 7}
        assert http.get("/me", headers=ann).json() == {"email": "ann@example.com"}
        assert http.get("/me").json() == {"email": None}
    events = received(inspector, 2)
    assert sorted((e["type"], e["email"]) for e in events) == [
        ("order.created", "ann@example.com"),
        ("profile.viewed", "ann@example.com"),
    ], app.output()


def test_flask_app(run_example: Any) -> None:
    app, inspector, http = serve(run_example, "flask_app")
    with http:
        assert http.post("/login", data={"email": "ann@example.com"}).status_code == 200
        assert http.post("/items/3").text == "item 3 saved\n"
        assert http.post("/export").text == "exported\n"
        assert http.post("/logout").status_code == 200
    events = received(inspector, 5)
    assert [(e["type"], e["email"]) for e in events] == [
        ("user.logged_in", "ann@example.com"),
        ("item.viewed", "ann@example.com"),
        ("item.updated", "ann@example.com"),
        ("report.exported", "ann@example.com"),
        ("user.logged_out", "ann@example.com"),
    ], app.output()


def test_django_app(run_example: Any) -> None:
    app, inspector, http = serve(run_example, "django_app")
    with http:
        wrong = {"username": "ann@example.com", "password": "nope"}
        assert http.post("/login/", data=wrong).status_code == 401
        right = {"username": "ann", "password": "pass-1234"}
        assert http.post("/login/", data=right).text == "hello ann\n"
        assert http.post("/orders/7/").json() == {"order": 7}
        assert http.post("/logout/").text == "bye\n"
    events = received(inspector, 5)
    assert [(e["type"], e["email"]) for e in events] == [
        ("user.login_failed", "ann@example.com"),
        ("user.logged_in", "ann@example.com"),
        ("order.viewed", "ann@example.com"),
        ("order.updated", "ann@example.com"),
        ("user.logged_out", "ann@example.com"),
    ], app.output()
    assert events[3]["details"]["route"] == "/orders/<int:pk>/"


def test_django_email(run_example: Any) -> None:
    app, inspector, http = serve(run_example, "django_email")
    with http:
        ann = {"username": "ann", "email": "ann@example.com", "password": "p-1234"}
        signed = http.post("/signup/", data=ann)
        assert (signed.status_code, signed.text) == (201, "welcome email sent: 1\n")
        asked = http.post("/password-reset/", data={"email": "ann@example.com"})
        assert asked.status_code == 200, asked.text
        welcome, reset = inspector.emails()
        assert (welcome["to"], welcome["from"]) == (
            "ann@example.com",
            "hello@example.com",
        )
        assert welcome["subject"] == "Welcome to Acme, {{ name }}"
        assert welcome["html_body"].startswith("<h1>Welcome, {{ name }}!</h1>")
        assert welcome["personalizations"] == {"name": "ann"}
        assert (reset["to"], reset["subject"]) == (
            "ann@example.com",
            "Reset your Acme password",
        )
        link = reset["html_body"].split('href="', 1)[1].split('"', 1)[0]
        form = http.get(httpx.URL(link).path, follow_redirects=True)
        assert "new_password1" in form.text, form.text
    assert [e["type"] for e in received(inspector, 1)] == ["account.signup"], (
        app.output()
    )


def test_django_subscribers(run_example: Any) -> None:
    script = run_example("django_subscribers")
    assert script.finish() == 0, script.output()
    out = script.output()
    assert "3 rows read: 3 sent and confirmed by Bento in 1 batch" in out, out
    assert "flushed: True" in out, out
    received = [line for line in out.splitlines() if line.startswith("received:")]
    assert received == [
        "received: ann@example.com 'Ann' {'full_name': 'Ann'} tags=['member'] "
        "subscribed",
        "received: cy@example.com 'Cy' {'full_name': 'Cy'} tags=['member'] "
        "unsubscribed",
        "received: dee@example.com 'Dee' {'full_name': 'Dee Doe'} "
        "tags=['member', 'staff'] subscribed",
        "received: robert@example.com 'Bob' {'full_name': 'Bob'} tags=['member'] "
        "subscribed",
    ], out


def test_celery_app(run_example: Any) -> None:
    script = run_example("celery_app")
    assert script.finish() == 0, script.output()
    out = script.output()
    assert "task enqueued by ann@example.com tracked: True" in out, out
    assert "task enqueued anonymously tracked: False" in out, out
    assert "received: receipt.sent ann@example.com {'order': 7}" in out, out
    assert out.count("received:") == 1, out


def test_logging_handler(run_example: Any) -> None:
    script = run_example("logging_handler")
    assert script.finish() == 0, script.output()
    out = script.output()
    assert "flushed: True" in out, out
    assert "received: payment.failed ann@example.com" in out, out
    assert "received: plan.upgraded bob@example.com" in out, out
    assert out.count("received:") == 2, out


def test_transactional_email(run_example: Any) -> None:
    script = run_example("transactional_email")
    assert script.finish() == 0, script.output()
    out = script.output()
    assert "queued: 1, failed: 0" in out, out
    assert (
        "received: to=ann@example.com subject='Your receipt for order {{ order }}'"
        in out
    )


@pytest.mark.parametrize("given", [False, True])
def test_subscriber_sync(run_example: Any, tmp_path: Path, given: bool) -> None:
    args = []
    if given:
        path = tmp_path / "mine.csv"
        path.write_text("email,first_name\ncy@example.com,Cy\n")
        args = [str(path)]
    script = run_example("subscriber_sync", *args)
    assert script.finish() == 0, script.output()
    out = script.output()
    if given:
        assert "imported: 1, failed: 0, requests: 1" in out, out
        assert "received: cy@example.com" in out, out
    else:
        assert "line 4: skipped" in out, out
        assert "imported: 2, failed: 0, requests: 1" in out, out
        assert (
            "received: ann@example.com {'plan': 'pro'} tags=['customer', 'beta']" in out
        )
