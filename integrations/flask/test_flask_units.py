"""`BentoTrack` in process (Flask's test client, the `bento_events`
fixture): what the end-to-end suite does not reach."""

from __future__ import annotations

import flask
import pytest

import bento_track
from bento_track import ConfigurationError
from bento_track.integrations.flask import BentoTrack


def call(app: flask.Flask, method: str, path: str, **kwargs: object) -> str:
    """A request whose body is read, as a server would (the event of a
    request is made when its body has been sent)."""
    with app.test_client() as http:
        return http.open(path, method=method, **kwargs).get_data(as_text=True)


def make_app(**options: object) -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = "t"

    @app.post("/login")
    def login() -> str:
        flask.session["email"] = flask.request.form["email"]
        return "in"

    @app.get("/search")
    def search() -> str:
        bento_track.track("searched")  # identity asked only now
        return "results"

    @app.get("/plain")
    def plain() -> str:
        return "plain"

    @app.post("/v1/orders", endpoint="orders.create")
    @app.post("/v2/orders", endpoint="orders.create")
    def create() -> str:
        return "created"

    BentoTrack(app, **options)  # type: ignore[arg-type]
    return app


def test_endpoint_rules_cover_every_url_rule_of_the_endpoint(bento_events) -> None:
    calls: list[str] = []

    def identify() -> str | None:
        calls.append(flask.request.path)
        return flask.session.get("email")

    app = make_app(events={"POST orders.create": "order.created"}, identify=identify)
    http = app.test_client()
    http.post("/login", data={"email": "ann@example.com"}).get_data()
    http.post("/v1/orders").get_data()
    http.post("/v2/orders").get_data()
    http.get("/plain").get_data()  # no rule, no track(): identify never asked

    assert [(e.type, e.email, e.details["route"]) for e in bento_events] == [
        ("order.created", "ann@example.com", "/v1/orders"),
        ("order.created", "ann@example.com", "/v2/orders"),
    ]
    assert "/plain" not in calls


def test_identity_asked_lazily_for_a_track_in_a_view(bento_events) -> None:
    app = make_app(identify=lambda: flask.session.get("email"))
    http = app.test_client()
    http.post("/login", data={"email": "bo@example.com"}).get_data()
    http.get("/search").get_data()

    assert [(e.type, e.email) for e in bento_events] == [("searched", "bo@example.com")]


def test_options_from_config_and_arguments_win(bento_events) -> None:
    app = flask.Flask(__name__)
    app.config["BENTO_TRACK"] = {
        "events": {"GET /ping": "from.config"},
        "identify": "os.getcwd",  # a dotted path (gives no email: warned)
    }

    @app.get("/ping")
    def ping() -> str:
        bento_track.identify("cy@example.com")
        return "pong"

    BentoTrack(app, events={"GET /ping": "from.argument"})
    assert call(app, "GET", "/ping") == "pong"

    assert [e.type for e in bento_events] == ["from.argument"]


def test_init_app_later_and_once(bento_events) -> None:
    ext = BentoTrack(events={"GET /ping": "pinged"})
    app = flask.Flask(__name__)

    @app.get("/ping")
    def ping() -> str:
        bento_track.identify("dee@example.com")
        return "pong"

    ext.init_app(app)
    ext.init_app(app)  # no second wrapping: one event per request
    assert call(app, "GET", "/ping") == "pong"

    assert [e.type for e in bento_events] == ["pinged"]


def test_configuration_errors_name_the_problem() -> None:
    with pytest.raises(ConfigurationError, match="METHOD"):
        make_app(events={"POST /a b c": "x"})
    app = make_app(events={"POST no.such.endpoint": "x"})
    with pytest.raises(ConfigurationError, match="no endpoint 'no.such.endpoint'"):
        call(app, "POST", "/v1/orders")
    app = flask.Flask(__name__)
    app.config["BENTO_TRACK"] = {"evnets": {}}
    with pytest.raises(ConfigurationError, match="evnets"):
        BentoTrack(app)


def test_status_none_lets_every_status_fire(bento_events) -> None:
    app = flask.Flask(__name__)

    @app.before_request
    def who() -> None:
        bento_track.identify("eve@example.com")

    BentoTrack(app, events={"GET /missing": "missing.seen"}, status=None)
    call(app, "GET", "/missing")  # 404: fires only because status=None

    assert [(e.type, e.details["status"]) for e in bento_events] == [
        ("missing.seen", 404)
    ]
