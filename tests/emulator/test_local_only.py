"""The emulator stays a local tool (issue 18), over loopback HTTP: it answers
only `Host` names that cannot be rebound, takes control writes only from its
own origin, and control bodies only as JSON."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from bento_track.emulator import (
    EmulatorExposedWarning,
    EmulatorServer,
    EmulatorSettings,
    create_app,
)
from bento_track.emulator.hosts import (
    HostName,
    allowed_hosts_from_env,
    exposure_warning,
    parse_host,
)
from bento_track.emulator.store import KINDS

from .conftest import UA, bento_client

EVIL = "evil.example"
PEOPLE = ("walter@example.com", "jesse@example.com", "skyler@example.com")
# What each write would do if it were accepted: every one changes the state.
BODIES: dict[str, dict[str, Any]] = {
    "/_emulator/faults": {"kind": "fail", "n": 3, "status": 503},
    "/_emulator/rate-limit": {"requests": 7, "window_seconds": 9},
}


def seed(server: EmulatorServer) -> None:
    """People in every kind of record, and a fault and a tag, so a write that
    got through would show in `fingerprint`."""
    with bento_client(server) as http:
        for path, body in (
            ("/batch/subscribers", {"subscribers": [{"email": PEOPLE[0]}]}),
            ("/batch/events", {"events": [{"type": "signup", "email": PEOPLE[1]}]}),
            (
                "/batch/emails",
                {
                    "emails": [
                        {
                            "to": PEOPLE[2],
                            "from": "hello@example.com",
                            "subject": "Hi",
                            "html_body": f"<p>{PEOPLE[2]}</p>",
                            "transactional": True,
                        }
                    ]
                },
            ),
            ("/fetch/tags", {"tag": {"name": "vip"}}),
        ):
            assert 200 <= http.post(path, json=body).status_code < 300, path
    server.inspect.reject_events(type="never")


def fingerprint(server: EmulatorServer) -> dict[str, Any]:
    """Everything a control write could change (not the refusal counts)."""
    summary = server.inspect.summary()
    summary.pop("refused")
    return {
        "summary": summary,
        "records": {kind: server.inspect._list(kind) for kind in KINDS},
        "requests": server.inspect.requests(),
    }


def routes(server: EmulatorServer, email_id: int) -> list[tuple[str, str]]:
    """(method, path) for every route of the app, path parameters filled in:
    a route added later is covered without editing this test."""
    fill = {
        "{kind}": list(KINDS),
        "{id:int}": [str(email_id)],
        "{name}": ["inbox.js", "inbox.css"],
        "{path:path}": ["fetch/subscribers", "stats/site", "batch/events"],
    }
    out: list[tuple[str, str]] = []
    for route in server.app.routes:
        methods = sorted(route.methods or {"GET", "POST"})  # the API takes all
        paths = [route.path]
        for marker, values in fill.items():
            paths = [p.replace(marker, v) for p in paths for v in values]
        out.extend((m, p) for m in methods for p in dict.fromkeys(paths))
    return out


@pytest.fixture
def seeded(emulator: EmulatorServer) -> EmulatorServer:
    seed(emulator)
    return emulator


def raw(server: EmulatorServer, **headers: str) -> httpx.Client:
    """A loopback client with Bento's auth (so API routes would answer)."""
    return httpx.Client(
        base_url=server.url,
        auth=(server.publishable_key, server.secret_key),
        params={"site_uuid": server.site_uuid, "email": PEOPLE[0]},
        headers={"User-Agent": UA, **headers},
        trust_env=False,
    )


# -- Host: DNS rebinding ---------------------------------------------------------


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_a_foreign_host_gets_421_and_no_data_on_every_route(
    seeded: EmulatorServer, accept: str
) -> None:
    before = fingerprint(seeded)
    [email] = seeded.inspect.emails(meta=True)
    every = routes(seeded, email["id"])
    assert len(every) > 20 and ("DELETE", "/_emulator/data") in every
    assert ("GET", "/_emulator/") in every  # the inbox page, for text/html

    with raw(seeded, Host=f"{EVIL}:{seeded.port}", Accept=accept) as http:
        answers = {
            (method, path): http.request(method, path, json=BODIES.get(path))
            for method, path in every
        }

    for (method, path), response in answers.items():
        assert 421 == response.status_code, (method, path, response.text)
        if method != "HEAD":
            assert "application/json" == response.headers["content-type"]
            assert EVIL in response.json()["error"]
        assert "@" not in response.text, (method, path)  # no address at all
    assert before == fingerprint(seeded)
    assert {"421": len(every)} == seeded.inspect.summary()["refused"]


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}",
        "localhost:{port}",
        "LocalHost.:{port}",
        "[::1]:{port}",
        "127.0.0.2:{port}",
        "localhost",
        "localhost:9025",  # a forwarded port (docker -p 9025:8025, ssh -L)
    ],
)
def test_loopback_names_are_answered_with_any_port(
    seeded: EmulatorServer, host: str
) -> None:
    with raw(seeded, Host=host.format(port=seeded.port)) as http:
        page = http.get("/_emulator/", headers={"Accept": "text/html"})
        people = http.get("/_emulator/subscribers")
        api = http.get("/api/v1/fetch/subscribers")

    assert (200, 200, 200) == (page.status_code, people.status_code, api.status_code)
    assert sorted(PEOPLE[:2]) == sorted(p["email"] for p in people.json())
    assert PEOPLE[0] == api.json()["data"]["attributes"]["email"]


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "0.0.0.0",
        "10.0.0.1",  # not the address the request arrived on
        "[2001:db8::1]",
        "emulator.test",
    ],
)
def test_other_names_are_refused(seeded: EmulatorServer, host: str) -> None:
    with raw(seeded, Host=host) as http:
        response = http.get("/_emulator/subscribers")

    assert 421 == response.status_code
    assert "@" not in response.text


@pytest.mark.parametrize(
    "host", ["evil.example:abc", "[::1", "[::1]x", "a b", "a@b", ":8025", "x:99999"]
)
def test_a_malformed_host_is_400(seeded: EmulatorServer, host: str) -> None:
    with raw(seeded, Host=host) as http:
        response = http.get("/_emulator/subscribers")

    assert 400 == response.status_code
    assert {"error": "the Host header is malformed"} == response.json()


@pytest.mark.anyio
async def test_no_host_header_is_400() -> None:
    app = create_app()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.0",
        "method": "GET",
        "scheme": "http",
        "path": "/_emulator/subscribers",
        "raw_path": b"/_emulator/subscribers",
        "query_string": b"",
        "headers": [],
        "server": ("127.0.0.1", 8025),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
    }
    try:
        await app(scope, receive, send)
    finally:
        app.state.emulator.store.close()

    assert 400 == sent[0]["status"]
    assert b'{"error":"a Host header is required"}' == sent[1]["body"]


@pytest.mark.anyio
async def test_the_address_a_request_arrives_on_is_answered() -> None:
    """A server bound to 0.0.0.0, reached by its LAN or container address:
    an address is never looked up, so it cannot be rebound."""
    app = create_app()
    # ASGITransport reports the URL's host as the local address (`server`).
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://10.1.2.3:8025"
    ) as http:
        own = await http.get("/_emulator/subscribers")
        other = await http.get(
            "/_emulator/subscribers", headers={"Host": "10.1.2.4:8025"}
        )
    app.state.emulator.store.close()

    assert (200, 421) == (own.status_code, other.status_code)


def test_allowed_hosts_are_answered() -> None:
    with EmulatorServer(
        port=0, allowed_hosts=["bento-emulator", "Mail.Local."]
    ) as server:
        seed(server)
        statuses = {}
        for host in ("bento-emulator", "BENTO-EMULATOR:8025", "mail.local", EVIL):
            with raw(server, Host=host) as http:
                statuses[host] = (
                    http.get("/_emulator/subscribers").status_code,
                    http.put(
                        "/_emulator/rate-limit", json={"requests": 50}
                    ).status_code,
                    http.get("/api/v1/stats/site").status_code,
                )
        summary = server.inspect.summary()

    assert {
        "bento-emulator": (200, 200, 200),
        "BENTO-EMULATOR:8025": (200, 200, 200),
        "mail.local": (200, 200, 200),
        EVIL: (421, 421, 421),
    } == statuses
    assert ["bento-emulator", "mail.local"] == summary["allowed_hosts"]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("bento", "a list of names"),
        (["bento:8025"], "without a port"),
        (["a b"], "not a host name"),
        ([""], "not a host name"),
        (["http://bento"], "not a host name"),
    ],
)
def test_allowed_hosts_are_checked(given: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmulatorSettings(allowed_hosts=given)


def test_allowed_hosts_from_the_environment() -> None:
    env = {"BENTO_EMULATOR_ALLOWED_HOSTS": " bento, mail.local  web,,"}

    assert ["bento", "mail.local", "web"] == allowed_hosts_from_env(env)
    assert [] == allowed_hosts_from_env({})
    assert ("bento", "mail.local") == EmulatorSettings(
        allowed_hosts=["Bento.", "bento", "MAIL.local"]
    ).allowed_hosts


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("localhost:8025", HostName("localhost", 8025)),
        ("[::1]:8025", HostName("::1", 8025)),
        ("[0:0::1]", HostName("::1")),
        ("Bento_Emulator.", HostName("bento_emulator")),
        ("::1", None),
        ("", None),
        ("a..b", HostName("a..b")),  # not a name anyone allows; refused as 421
        ("x:", None),
    ],
)
def test_parse_host(header: str, parsed: HostName | None) -> None:
    assert parsed == parse_host(header)


# -- cross-site writes -------------------------------------------------------------


def writes(server: EmulatorServer) -> list[tuple[str, str]]:
    """Every state-changing (method, path) of the control API."""
    return [
        (m, p)
        for m, p in routes(server, 1)
        if p.startswith("/_emulator") and m not in ("GET", "HEAD")
    ]


@pytest.fixture
def every_write(emulator: EmulatorServer) -> list[tuple[str, str]]:
    found = writes(emulator)
    assert {
        ("POST", "/_emulator/reset"),
        ("POST", "/_emulator/faults"),
        ("DELETE", "/_emulator/faults"),
        ("PUT", "/_emulator/rate-limit"),
        ("POST", "/_emulator/rate-limit"),
        ("DELETE", "/_emulator/data"),
        ("DELETE", "/_emulator/requests"),
        ("DELETE", "/_emulator/events"),
    } <= set(found)
    return found


def own_origin(server: EmulatorServer) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:1"},  # another loopback port: same site
        {"Origin": "http://localhost:{port}"},  # same server, another origin
        {"Origin": "https://127.0.0.1:{port}"},
        {"Origin": f"http://{EVIL}"},
        {"Origin": "null"},  # sandboxed frames, file: pages, data: URLs
        {"Origin": "garbage"},
        {"Referer": "http://127.0.0.1:1/attack.html"},
        {"Referer": "about:blank"},
        {"Origin": "http://127.0.0.1:1", "Referer": "http://127.0.0.1:{port}/"},
    ],
    ids=lambda h: " ".join(f"{k}={v}" for k, v in h.items()),
)
@pytest.mark.parametrize("body_type", ["json", "text/plain"])
def test_cross_site_writes_get_403_and_change_nothing(
    seeded: EmulatorServer,
    every_write: list[tuple[str, str]],
    headers: dict[str, str],
    body_type: str,
) -> None:
    before = fingerprint(seeded)
    sent = {k: v.format(port=seeded.port) for k, v in headers.items()}

    with raw(seeded, **sent) as http:
        answers = {}
        for method, path in every_write:
            body = BODIES.get(path)
            if body_type == "json":
                response = http.request(method, path, json=body)
            else:
                response = http.request(
                    method,
                    path,
                    content=b"" if body is None else repr(body).encode(),
                    headers={"Content-Type": "text/plain"},
                )
            answers[method, path] = response

    for where, response in answers.items():
        assert 403 == response.status_code, (where, response.text)
        assert re.match(r"cross-site request refused", response.json()["error"])
    assert before == fingerprint(seeded)


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, the library, test suites: not a browser page
        {"Origin": "{own}"},
        {"Origin": "{own}", "Referer": "http://127.0.0.1:1/"},  # Origin decides
        {"Referer": "{own}/_emulator/"},
        {"Origin": "http://LOCALHOST:{port}", "Host": "localhost:{port}"},
    ],
    ids=lambda h: " ".join(f"{k}={v}" for k, v in h.items()) or "none",
)
def test_writes_from_the_own_origin_or_no_page_go_through(
    seeded: EmulatorServer, headers: dict[str, str]
) -> None:
    sent = {
        k: v.format(port=seeded.port, own=own_origin(seeded))
        for k, v in headers.items()
    }
    with raw(seeded, **sent) as http:
        fault = http.post("/_emulator/faults", json=BODIES["/_emulator/faults"])
        limit = http.put("/_emulator/rate-limit", json=BODIES["/_emulator/rate-limit"])
        cleared = http.delete("/_emulator/events")

    assert (200, 200, 200) == (
        fault.status_code,
        limit.status_code,
        cleared.status_code,
    )
    assert 503 == seeded.inspect.faults()["queue"][0]["status"]
    assert 7 == seeded.inspect.rate_limit()["requests"]
    assert [] == seeded.inspect.events()
    with raw(seeded, **sent) as http:
        assert 200 == http.post("/_emulator/reset").status_code
    assert [] == seeded.inspect.subscribers()


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/vnd.api+json",
        None,  # a body without a type: fetch() with a Blob
    ],
)
@pytest.mark.parametrize("origin", [None, "own"])
def test_control_bodies_must_be_json(
    seeded: EmulatorServer, content_type: str | None, origin: str | None
) -> None:
    before = fingerprint(seeded)
    headers = {} if origin is None else {"Origin": own_origin(seeded)}
    if content_type is not None:
        headers["Content-Type"] = content_type

    with raw(seeded, **headers) as http:
        answers = [
            http.request(method, path, content=b'{"kind": "drop", "requests": 1}')
            for method, path in writes(seeded)
        ]

    assert [415] * len(answers) == [a.status_code for a in answers]
    assert "Content-Type: application/json" in answers[0].json()["error"]
    assert before == fingerprint(seeded)


def test_json_with_a_charset_and_empty_bodies_are_taken(
    seeded: EmulatorServer,
) -> None:
    with raw(seeded) as http:
        fault = http.post(
            "/_emulator/faults",
            content=b'{"kind": "drop"}',
            headers={"Content-Type": "Application/JSON; charset=utf-8"},
        )
        # `curl -X POST .../reset`: no body, no type.
        reset = http.post("/_emulator/reset")

    assert (200, 200) == (fault.status_code, reset.status_code)
    assert [] == seeded.inspect.subscribers()


def test_reads_are_not_writes(seeded: EmulatorServer) -> None:
    """A cross-origin page cannot read the answers (no CORS headers), so a
    GET with a foreign Origin is answered like any other."""
    with raw(seeded, Origin="http://127.0.0.1:1") as http:
        response = http.get("/_emulator/subscribers")

    assert 200 == response.status_code
    assert "access-control-allow-origin" not in response.headers


# -- binding other addresses ---------------------------------------------------------


def test_a_server_on_every_address_warns_and_says_how_to_allow_names() -> None:
    with pytest.warns(EmulatorExposedWarning) as caught:
        server = EmulatorServer(host="0.0.0.0", port=0)
    try:
        [warning] = caught
        text = str(warning.message)
        assert "binding 0.0.0.0, not loopback" in text
        assert "EmulatorServer(allowed_hosts=[...])" in text
        assert __file__ == warning.filename  # points at the caller's line
        with server:
            # Its URL is on loopback, which reaches it and is always answered.
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
            server.inspect.fail_next(1)
            assert 1 == len(server.inspect.faults()["queue"])
    finally:
        server.close()


def test_a_server_on_every_address_with_allowed_hosts_still_warns() -> None:
    with pytest.warns(EmulatorExposedWarning, match="not loopback") as caught:
        server = EmulatorServer(host="0.0.0.0", allowed_hosts=["bento"])
    server.close()

    assert "allowed_hosts=" not in str(caught[0].message)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_a_loopback_server_does_not_warn(host: str) -> None:
    # pytest turns warnings into errors here: constructing is the assertion.
    EmulatorServer(host=host).close()


def test_exposure_warning_text() -> None:
    assert exposure_warning("127.0.0.1", [], "--allow-host") is None
    said = exposure_warning("0.0.0.0", [], "--allow-host NAME")
    assert said is not None and said.count("--allow-host NAME") == 1
    assert "421" in said
