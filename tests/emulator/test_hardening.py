"""The emulator never answers 500: malformed bodies get Bento's 400 shape,
bodies over `max_body_bytes` get 413 without being read whole, and the
control API checks its numbers (issue 10, point 6)."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from bento_track.emulator import EmulatorServer, EmulatorSettings, create_app
from bento_track.emulator.cli import add_arguments, run
from bento_track.emulator.faults import Fault
from bento_track.emulator.settings import DEFAULT_MAX_BODY_BYTES
from bento_track.emulator.validation import MAX_DEPTH

from .conftest import UA

EVENT = {"type": "t", "email": "a@example.com"}
JSON = {"Content-Type": "application/json"}
MiB = 1024 * 1024


def control(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client for the `/_emulator/` routes of an in-process app, sending
    its bodies as JSON (the only type the control API takes)."""
    return httpx.AsyncClient(
        transport=api._transport,
        base_url="http://127.0.0.1/_emulator",
        headers=JSON,
    )


def nested(depth: int) -> bytes:
    """An events body whose deepest array is `depth` levels down."""
    inner = depth - 4  # {"events": [{"details": {"x": ...}}]} is 4 levels
    details = "[" * inner + "]" * inner if inner > 0 else "{}"
    return (
        '{"events": [{"type": "t", "email": "a@example.com", "details": {"x": '
        + details
        + "}}]}"
    ).encode()


# -- too deep ------------------------------------------------------------------


@pytest.mark.anyio
async def test_json_nested_100000_deep_is_400(inprocess) -> None:
    api = inprocess()
    deep = b"[" * 100_000 + b"]" * 100_000
    async with control(api) as inspect:
        answers = [
            await api.post("/batch/events", content=deep, headers=JSON),
            await api.post(
                "/batch/events",
                content=b'{"events": [{"details": ' + deep + b"}]}",
                headers=JSON,
            ),
            await inspect.put("/rate-limit", content=b'{"requests": ' + deep + b"}"),
            await inspect.post("/faults", content=deep),
        ]

    expected = {"error": f"Invalid JSON: nested deeper than {MAX_DEPTH} levels"}
    assert [(400, expected)] * 4 == [(a.status_code, a.json()) for a in answers]
    assert [] == api.app.state.emulator.store.list("events")


@pytest.mark.anyio
async def test_nesting_up_to_the_limit_is_accepted(inprocess) -> None:
    api = inprocess()

    at_limit = await api.post("/batch/events", content=nested(MAX_DEPTH), headers=JSON)
    over = await api.post("/batch/events", content=nested(MAX_DEPTH + 1), headers=JSON)

    assert 200 == at_limit.status_code
    assert 400 == over.status_code
    assert 1 == len(api.app.state.emulator.store.list("events"))


# -- lone surrogates -------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (rb'{"events":[{"type":"\ud800","email":"a@example.com"}]}', "events[0].type"),
        (
            rb'{"events":[{"type":"t","email":"a@example.com\udfff"}]}',
            "events[0].email",
        ),
        (
            rb'{"events":[{"type":"t","email":"a@example.com","fields":{"k":"\ude00\ud83d"}}]}',
            "events[0].fields.k",
        ),
        (
            rb'{"events":[{"type":"t","email":"a@example.com","details":{"\udc00":1}}]}',
            None,
        ),
    ],
)
async def test_escaped_lone_surrogate_is_400(inprocess, raw: bytes, field) -> None:
    api = inprocess()

    response = await api.post("/batch/events", content=raw, headers=JSON)

    assert 400 == response.status_code
    message = response.json()["error"]
    assert message.startswith("Invalid JSON: ") and "lone surrogate" in message
    if field is not None:
        assert message.startswith(f"Invalid JSON: {field} ")
    else:  # the key itself is named, escaped so the answer stays valid UTF-8
        assert "details.\\udc00" in message
    assert [] == api.app.state.emulator.store.list("events")
    assert [400] == [e["status"] for e in api.app.state.emulator.log.entries()]


@pytest.mark.anyio
async def test_an_escaped_surrogate_pair_is_one_character(inprocess) -> None:
    api = inprocess()
    raw = rb'{"events":[{"type":"\ud83d\ude00","email":"a@example.com"}]}'

    response = await api.post("/batch/events", content=raw, headers=JSON)

    assert 200 == response.status_code
    assert ["\U0001f600"] == [
        e["type"] for e in api.app.state.emulator.store.list("events")
    ]


# -- numbers ---------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b'{"requests": 1e400}',
            "Invalid JSON: requests is not a finite number",
        ),
        (
            b'{"window_seconds": -1e400}',
            "Invalid JSON: window_seconds is not a finite number",
        ),
        (b'{"requests": NaN}', "Invalid JSON: requests is not a finite number"),
        (b'{"requests": 1e20}', "requests must be between 1 and 1000000"),
        (
            b'{"window_seconds": 1e20}',
            "window_seconds must be over 0 and at most 86400 seconds",
        ),
        (b'{"requests": 0}', "requests must be between 1 and 1000000"),
        (b'{"requests": 2.5}', "requests must be a whole number"),
        (b'{"requests": true}', "requests must be a number"),
        (b'{"requests": "5"}', "requests must be a number"),
        (b'{"window_seconds": false}', "window_seconds must be a number"),
        (
            b'{"window_seconds": 0}',
            "window_seconds must be over 0 and at most 86400 seconds",
        ),
        (b'{"requests": 5, "reset_window": 1}', "reset_window must be true or false"),
        (b"[5, 60]", "expected {requests, window_seconds}"),
        (b"{requests: 5}", "Invalid JSON"),
    ],
)
async def test_rate_limit_numbers_are_checked(inprocess, raw: bytes, message) -> None:
    api = inprocess(requests_per_minute=7, rate_window=30.0)

    async with control(api) as inspect:
        response = await inspect.put("/rate-limit", content=raw)
        after = (await inspect.get("/rate-limit")).json()

    assert (400, {"error": message}) == (response.status_code, response.json())
    assert (7, 30.0) == (after["requests"], after["window_seconds"])  # unchanged


@pytest.mark.anyio
async def test_rate_limit_takes_whole_floats_and_the_bounds(inprocess) -> None:
    api = inprocess()
    async with control(api) as inspect:
        whole = await inspect.put("/rate-limit", json={"requests": 3.0})
        bounds = await inspect.put(
            "/rate-limit",
            json={"requests": 1_000_000, "window_seconds": 86400, "reset_window": True},
        )

    assert 3 == whole.json()["requests"]
    assert (1_000_000, 86400.0) == (
        bounds.json()["requests"],
        bounds.json()["window_seconds"],
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (b'{"kind": "fail", "n": 1e400}', "Invalid JSON: n is not a finite number"),
        (b'{"kind": "fail", "n": 1e20}', "n must be between 1 and 1000000"),
        (b'{"kind": "fail", "n": 0}', "n must be between 1 and 1000000"),
        (b'{"kind": "fail", "n": true}', "n must be a number"),
        (b'{"kind": "fail", "n": null}', "n must be a number"),
        (b'{"kind": "fail", "n": 1.5}', "n must be a whole number"),
        (b'{"kind": "fail", "status": 1e20}', "status must be between 400 and 599"),
        (b'{"kind": "fail", "status": 200}', "status must be between 400 and 599"),
        (b'{"kind": "fail", "status": "500"}', "status must be a number"),
        (
            b'{"kind": "fail", "retry_after": 1e20}',
            "retry_after must be between 0 and 86400",
        ),
        (
            b'{"kind": "storm", "retry_after": -1}',
            "retry_after must be between 0 and 86400",
        ),
        (
            b'{"kind": "slow", "seconds": Infinity}',
            "Invalid JSON: seconds is not a finite number",
        ),
        (b'{"kind": "slow", "seconds": 1e20}', "seconds must be between 0 and 600"),
        (b'{"kind": "slow", "seconds": -0.5}', "seconds must be between 0 and 600"),
        (b'{"kind": "slow", "seconds": false}', "seconds must be a number"),
        (b'{"kind": "slow"}', "seconds must be a number"),
        (b'"fail"', "a fault must be a JSON object"),
        (b"\xff", "Invalid JSON"),
    ],
)
async def test_fault_numbers_are_checked(inprocess, rule: bytes, message) -> None:
    api = inprocess()

    async with control(api) as inspect:
        response = await inspect.post("/faults", content=rule)

    assert (400, {"error": message}) == (response.status_code, response.json())
    assert {"queue": [], "reject": []} == api.app.state.emulator.faults.snapshot()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("details", "field"),
    [
        (b'{"x": 1e400}', "events[0].details.x"),
        (b'{"x": [1, -Infinity]}', "events[0].details.x[1]"),
        (b'{"x": {"y": NaN}}', "events[0].details.x.y"),
    ],
)
async def test_numbers_json_cannot_carry_are_400(inprocess, details, field) -> None:
    api = inprocess()
    raw = b'{"events": [{"type": "t", "email": "a@example.com", "details": '
    raw += details + b"}]}"

    response = await api.post("/batch/events", content=raw, headers=JSON)

    assert 400 == response.status_code
    assert {"error": f"Invalid JSON: {field} is not a finite number"} == response.json()


@pytest.mark.anyio
@pytest.mark.parametrize("name", [["add_tag"], {"add_tag": 1}])
async def test_a_command_name_that_cannot_hash_is_400(inprocess, name) -> None:
    """Found by the fuzz test: `name not in COMMANDS` (a frozenset) hashed it."""
    api = inprocess()

    response = await api.post(
        "/fetch/commands",
        json={"command": [{"command": name, "email": "a@example.com"}]},
    )

    assert 400 == response.status_code
    assert {"field": "command[0].command", "message": "is not a known command"} in (
        response.json()["errors"]
    )


# -- bytes and content types -------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "raw",
    [
        '{"events": [{"type": "café", "email": "a@example.com"}]}'.encode("latin-1"),
        json.dumps({"events": [EVENT]}).encode("utf-16"),
        b'{"events": [{"type": "\xed\xa0\x80", "email": "a@example.com"}]}',
        b'{"events": [{"type": "\xc0\xaf", "email": "a@example.com"}]}',
        b"\xef\xbb\xbf" + json.dumps({"events": [EVENT]}).encode(),
        b"\x00" * 10,
    ],
)
async def test_bytes_that_are_not_utf8_json_are_400(inprocess, raw: bytes) -> None:
    api = inprocess()

    response = await api.post("/batch/events", content=raw, headers=JSON)

    assert (400, {"error": "Invalid JSON"}) == (response.status_code, response.json())


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content_type", "status", "error"),
    [
        (None, 400, "Content-Type must be application/json"),
        ("text/plain", 400, "Content-Type must be application/json"),
        (
            "application/x-www-form-urlencoded",
            400,
            "Content-Type must be application/json",
        ),
        (
            "multipart/form-data; boundary=x",
            400,
            "Content-Type must be application/json",
        ),
        ("application/jsonx", 400, "Content-Type must be application/json"),
        ("application/json; charset=latin-1", 400, "charset must be utf-8"),
        ("application/json", 200, None),
        ('Application/JSON; Charset="UTF-8"', 200, None),
        ("application/vnd.api+json", 200, None),
    ],
)
async def test_content_type_must_be_json(
    inprocess, content_type: str | None, status: int, error: str | None
) -> None:
    api = inprocess()
    headers = {} if content_type is None else {"Content-Type": content_type}

    response = await api.post(
        "/batch/events", content=json.dumps({"events": [EVENT]}), headers=headers
    )

    assert status == response.status_code
    if error is not None:
        assert {"error": error} == response.json()


@pytest.mark.anyio
async def test_a_bodyless_request_needs_no_content_type(inprocess) -> None:
    api = inprocess()
    assert 200 == (await api.get("/fetch/tags")).status_code
    assert (
        200
        == (
            await api.post(
                "/experimental/validation", params={"email": "a@example.com"}
            )
        ).status_code
    )


@pytest.mark.anyio
async def test_a_non_ascii_authorization_header_is_401(inprocess) -> None:
    api = inprocess()
    # b64decode raises a plain ValueError for a non-ASCII str (was a 500).
    async with httpx.AsyncClient(
        transport=api._transport, base_url=str(api.base_url), params=api.params
    ) as raw:
        response = await raw.get(
            "/fetch/tags",
            headers={
                "User-Agent": UA,
                "Authorization": "Basic \xe9t\xe9".encode("latin-1"),
            },
        )
    assert 401 == response.status_code


# -- body size --------------------------------------------------------------------


def _chunks(total: int, size: int, sent: list[int]) -> Iterator[bytes]:
    """`total` bytes of one JSON string, `size` at a time; counts what is taken."""
    chunk = b"a" * size
    for _ in range(total // size):
        sent.append(size)
        yield chunk


async def _achunks(total: int, size: int, sent: list[int]) -> AsyncIterator[bytes]:
    for chunk in _chunks(total, size, sent):
        yield chunk


def test_50_mb_body_is_413_over_loopback(http: httpx.Client, emulator) -> None:
    body = b'{"events": [{"type": "t", "email": "a@example.com", "details": "'
    body += b"a" * (50 * MiB) + b'"}]}'

    response = http.post("/batch/events", content=body, headers=JSON)
    after = http.post("/batch/events", json={"events": [EVENT]})

    assert 413 == response.status_code
    assert {
        "error": f"Request body is over the {DEFAULT_MAX_BODY_BYTES}-byte limit"
    } == response.json()
    assert 200 == after.status_code  # the server drained it and goes on
    assert [413, 200] == [r["status"] for r in emulator.inspect.requests()]
    assert [EVENT] == emulator.inspect.events()


def test_chunked_body_over_the_cap_is_413_over_loopback(
    http: httpx.Client, emulator
) -> None:
    sent: list[int] = []

    response = http.post(
        "/batch/events", content=_chunks(12 * MiB, 64 * 1024, sent), headers=JSON
    )

    assert "content-length" not in response.request.headers
    assert 413 == response.status_code
    assert 200 == http.get("/fetch/tags").status_code


@pytest.mark.anyio
async def test_declared_length_over_the_cap_is_413_unread(inprocess) -> None:
    api = inprocess()
    sent: list[int] = []
    headers = {**JSON, "Content-Length": str(50 * MiB)}

    response = await api.post(
        "/batch/events", content=_achunks(50 * MiB, MiB, sent), headers=headers
    )

    assert 413 == response.status_code
    assert [] == sent  # not one chunk was asked for


@pytest.mark.anyio
async def test_chunked_body_stops_being_read_at_the_cap(inprocess) -> None:
    api = inprocess(max_body_bytes=MiB)
    sent: list[int] = []

    response = await api.post(
        "/batch/events", content=_achunks(50 * MiB, 64 * 1024, sent), headers=JSON
    )

    assert (413, {"error": f"Request body is over the {MiB}-byte limit"}) == (
        response.status_code,
        response.json(),
    )
    assert sum(sent) == MiB + 64 * 1024  # the chunk that crossed the cap, no more


@pytest.mark.anyio
@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_at_the_cap_passes_and_one_byte_more_is_413(
    inprocess, chunked: bool
) -> None:
    body = json.dumps({"events": [EVENT]}).encode()
    api = inprocess(max_body_bytes=len(body))

    async def stream(raw: bytes) -> AsyncIterator[bytes]:
        for i in range(len(raw)):
            yield raw[i : i + 1]

    answers = []
    for raw in (body, body + b" "):
        content: Any = stream(raw) if chunked else raw
        answers.append(
            (await api.post("/batch/events", content=content, headers=JSON)).status_code
        )

    assert [200, 413] == answers


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("length", "status"),
    [("abc", 400), ("-1", 400), ("1.5", 400), ("9" * 5000, 413), ("0" * 40 + "2", 200)],
)
async def test_content_length_is_checked(inprocess, length: str, status: int) -> None:
    api = inprocess()

    response = await api.post(
        "/experimental/validation",
        content=b"{}",
        headers={**JSON, "Content-Length": length},
    )

    assert status == response.status_code
    if status == 400:
        assert {"error": "Invalid Content-Length"} == response.json()


@pytest.mark.anyio
async def test_control_routes_have_the_cap_too(inprocess) -> None:
    api = inprocess(max_body_bytes=100)
    rule = json.dumps({"kind": "fail", "body": "x" * 200}).encode()

    async with control(api) as inspect:
        faults = await inspect.post("/faults", content=rule)
        limit = await inspect.put("/rate-limit", content=b" " * 101)

    assert [413, 413] == [faults.status_code, limit.status_code]
    assert {"queue": [], "reject": []} == api.app.state.emulator.faults.snapshot()


@pytest.mark.anyio
async def test_faults_still_answer_before_the_size_check(inprocess) -> None:
    api = inprocess(max_body_bytes=10)
    api.app.state.emulator.faults.add(Fault("fail", 1, status=503))

    first = await api.post("/batch/events", content=b" " * 11, headers=JSON)
    second = await api.post("/batch/events", content=b" " * 11, headers=JSON)

    assert [503, 413] == [first.status_code, second.status_code]


# -- a client that leaves mid-body -------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path", "answered"),
    [("POST", "/api/v1/batch/events", False), ("POST", "/_emulator/faults", True)],
)
async def test_a_client_leaving_mid_body_raises_nothing(
    method: str, path: str, answered: bool
) -> None:
    app = create_app()
    messages = iter(
        [
            {"type": "http.request", "body": b'{"events": [', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"user-agent", UA.encode()),
        ],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
    }

    try:
        await app(scope, receive, send)

        assert answered == bool(sent)  # an answer, if any, goes nowhere
        if not answered:
            assert [0] == [e["status"] for e in app.state.emulator.log.entries()]
    finally:
        app.state.emulator.store.close()


# -- settings and command line ------------------------------------------------------


def test_max_body_bytes_setting() -> None:
    assert 10 * MiB == DEFAULT_MAX_BODY_BYTES == EmulatorSettings().max_body_bytes
    assert 5 == EmulatorSettings(max_body_bytes=5).max_body_bytes
    for bad in (0, -1, True, 1.5, "10"):
        with pytest.raises(ValueError, match="max_body_bytes"):
            EmulatorSettings(max_body_bytes=bad)  # type: ignore[arg-type]
    server = EmulatorServer(max_body_bytes=1234)
    try:
        assert 1234 == server.settings.max_body_bytes
        assert 1234 == server.state.summary()["max_body_bytes"]
    finally:
        server.close()


def test_rate_settings_are_checked_by_name() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        EmulatorSettings(requests_per_minute=0)
    with pytest.raises(ValueError, match="rate_window"):
        EmulatorSettings(rate_window=float("inf"))


def test_max_body_bytes_option(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    assert DEFAULT_MAX_BODY_BYTES == parser.parse_args([]).max_body_bytes
    assert 1024 == parser.parse_args(["--max-body-bytes", "1024"]).max_body_bytes
    with pytest.raises(SystemExit) as usage:
        parser.parse_args(["--max-body-bytes", "ten"])
    refused = run(parser.parse_args(["--max-body-bytes", "0"]))

    assert 2 == usage.value.code
    assert 2 == refused
    assert "max_body_bytes" in capsys.readouterr().err
