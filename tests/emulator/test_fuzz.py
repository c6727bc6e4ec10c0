"""Fuzzing the emulator in-process (`httpx.ASGITransport`): whatever body,
headers and Content-Type arrive at an API or control endpoint, it never
answers 500, no exception escapes the app, a 400 has Bento's shape, what it
accepted can still be listed, and a body over the cap never sits in memory.

Deterministic (`derandomize=True`, no example database) and bounded
(`max_examples`): about 3,000 examples in well under 20 seconds.
"""

from __future__ import annotations

import base64
import copy
import json
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bento_track.emulator import EmulatorSettings, create_app
from bento_track.emulator.api import ROUTES
from bento_track.emulator.ratelimit import MAX_REQUESTS
from bento_track.emulator.store import KINDS
from bento_track.emulator.validation import MAX_DEPTH, BodyError, parse_json

from .conftest import UA

MiB = 1024 * 1024


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same examples on every run and machine
        database=None,  # and nothing written into the checkout
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # the app is reset per example
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# -- strategies ------------------------------------------------------------------------


def mostly(
    good: st.SearchStrategy[Any], other: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """`good` nine times in ten."""
    return st.integers(0, 9).flatmap(lambda roll: other if roll == 0 else good)


# Characters JSON finds awkward, and anything else but lone surrogates
# (codec="utf-8": without it, st.characters() can still yield one).
awkward = st.sampled_from(list('[]{}"\\,:/ \x00\x7f\u2028\ufeff\U0001f600'))
plain = st.text(st.one_of(awkward, st.characters(codec="utf-8")), max_size=12)
# st.text() hardly ever draws a surrogate from its alphabet: join characters.
surrogates = st.characters(categories=["Cs"])
lone = st.tuples(plain, surrogates, plain).map("".join)  # one lone surrogate
text = plain | st.lists(awkward | surrogates, max_size=12).map("".join)
NON_FINITE = [float("nan"), float("inf"), float("-inf")]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    # Written by json.dumps as NaN/Infinity, which JSON does not have, and
    # sometimes respelled 1e400 (see `encoded`).
    st.sampled_from(NON_FINITE),
    text,
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4)
    ),
    max_leaves=12,
)

# What a valid body may hold: awkward text, big integers, finite floats.
flat = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    plain,
)
nested = st.recursive(
    flat,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(plain, inner, max_size=3)
    ),
    max_leaves=8,
)
names = plain.filter(str.strip)
emails = st.one_of(
    st.just("a@example.com"),
    st.from_regex(r"[^@\s]{1,10}@[^@\s.]{1,8}(\.[^@\s.]{1,6}){1,2}", fullmatch=True),
)
events = st.fixed_dictionaries(
    {"type": st.sampled_from(["t", "$tag", "$remove_tag", "$subscribe"]) | names,
     "email": emails},
    optional={
        "fields": st.dictionaries(names, flat, max_size=3),
        "details": st.fixed_dictionaries({"tag": names}) | st.dictionaries(plain, nested),
        "date": st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T12:00:00+02:00"]),
    },
)  # fmt: skip
subscribers = st.fixed_dictionaries(
    {"email": emails},
    optional={
        "first_name": plain,
        "tags": st.lists(names, max_size=3) | plain,
        "remove_tags": plain,
        "plan": flat,
    },
)
emails_out = st.fixed_dictionaries(
    {"to": emails, "from": emails, "subject": names, "html_body": names},
    optional={
        "transactional": st.booleans(),
        "personalizations": st.dictionaries(plain, flat, max_size=3),
    },
)
commands = st.one_of(
    st.fixed_dictionaries(
        {
            "command": st.sampled_from(
                ["add_tag", "add_tag_via_event", "remove_tag", "remove_field"]
            ),
            "email": emails,
            "query": names,
        }
    ),
    st.fixed_dictionaries(
        {
            "command": st.just("add_field"),
            "email": emails,
            "query": st.fixed_dictionaries({"key": names, "value": flat}),
        }
    ),
    st.fixed_dictionaries(
        {"command": st.sampled_from(["subscribe", "unsubscribe"]), "email": emails}
    ),
    st.fixed_dictionaries(
        {"command": st.just("change_email"), "email": emails, "query": emails}
    ),
)


def batch(key: str, items: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {key: st.lists(items, min_size=1, max_size=4)},
        optional={"site_uuid": st.just("emulator-site")},
    )


# A valid body for each endpoint; `spoiled` breaks one to three things in it.
DOCUMENTS: dict[str, st.SearchStrategy[Any]] = {
    "/batch/events": batch("events", events),
    "/batch/subscribers": batch("subscribers", subscribers),
    "/batch/emails": batch("emails", emails_out),
    "/fetch/commands": batch("command", commands),
    "/fetch/tags": st.fixed_dictionaries({"tag": st.fixed_dictionaries({"name": names})}),
    "/fetch/fields": st.fixed_dictionaries({"field": st.fixed_dictionaries({"key": names})}),
    "/fetch/subscribers": st.fixed_dictionaries(
        {"subscriber": st.fixed_dictionaries({"email": emails})}
    ),
    "/experimental/validation": st.fixed_dictionaries({"email": emails}),
}  # fmt: skip

# What may replace one value of a valid body: mostly the cases that once
# made 500s (lone surrogates, numbers JSON cannot carry), or nesting, or junk.
# Drawn explicitly: one_of() would flatten `values` into many branches.
SPOILERS: dict[str, st.SearchStrategy[Any]] = {
    "lone surrogate": lone,
    "not finite": st.sampled_from(NON_FINITE),
    # copied: sampled_from hands out the same objects, and a later spoil
    # could then nest one inside itself.
    "wrong type": st.sampled_from([[], {}, ["t"], {"t": 1}, 0, True, None, ""]).map(
        copy.deepcopy
    ),
    "deep": st.integers(1, 3 * MAX_DEPTH).map(lambda n: json.loads("[" * n + "]" * n)),
    "junk": values,
}
spoilers = st.sampled_from(
    [*SPOILERS, "lone surrogate", "not finite", "wrong type"]
).flatmap(SPOILERS.__getitem__)


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in `doc`, outermost first."""
    found: list[tuple[Any, Any]] = []
    todo = [doc]
    while todo:
        item = todo.pop(0)
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, value in list(pairs):
            found.append((item, key))
            if isinstance(value, (dict, list)):
                todo.append(value)
    return found


@st.composite
def spoiled(draw: st.DrawFn, docs: st.SearchStrategy[Any]) -> Any:
    """A valid document with one to three values, or keys, replaced by
    spoilers; mostly leaves, where a bad value still passes the validators
    and reaches the store and the answers (where the 500s were)."""
    doc = draw(docs)
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(doc)
        leaves = [(c, k) for c, k in slots if not isinstance(c[k], (dict, list))]
        if leaves and draw(st.integers(0, 4)):
            slots = leaves
        if not slots:
            return doc
        container, key = slots[draw(st.integers(0, len(slots) - 1))]
        if isinstance(container, dict) and draw(st.integers(0, 4)) == 0:
            container[draw(lone)] = container.pop(key)  # a key, lone surrogate
        else:
            container[key] = draw(spoilers)
    return doc


documents = st.one_of(values, *DOCUMENTS.values())

# Number tokens Python's parser reads but JSON answers cannot carry, or that
# are out of every range, spliced in where the control API wants numbers.
tokens = st.sampled_from(
    ["1e400", "-1e400", "1e20", "-1e20", "1e-400", "NaN", "Infinity", "-Infinity",
     "-0", "0", "0.5", "1", "2.0", "59", "600", "86401", "9" * 5000, "true",
     "false", "null", '"5"', "[]", "{}"]
)  # fmt: skip
control_docs = st.one_of(
    st.dictionaries(
        st.sampled_from(["requests", "window_seconds", "reset_window"]),
        tokens,
        max_size=3,
    ),
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(
                [
                    '"fail"',
                    '"slow"',
                    '"drop"',
                    '"storm"',
                    '"reject"',
                    '"nope"',
                    "1",
                    "null",
                ]
            )
        },
        optional={
            "n": tokens,
            "status": tokens,
            "retry_after": tokens,
            "seconds": tokens,
            "email": st.sampled_from(['"a@example.com"', "1", "null"]),
            "type": st.sampled_from(['"t"', "[]"]),
            "body": tokens,
        },
    ),
).map(lambda doc: "{" + ",".join(f'"{k}": {v}' for k, v in doc.items()) + "}")


@st.composite
def encoded(draw: st.DrawFn, docs: st.SearchStrategy[Any]) -> bytes:
    """A document as JSON bytes: escaped or raw non-ASCII (raw surrogates
    make invalid UTF-8), NaN/Infinity written as Python writes them, or 1e400."""
    text = json.dumps(draw(docs), ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        text = text.replace("Infinity", "1e400")  # Python reads it as inf
    return text.encode("utf-8", "surrogatepass")


@st.composite
def deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.one_of(st.integers(1, 2 * MAX_DEPTH), st.integers(1, 200_000)))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    inside = draw(st.sampled_from([b"1", b'"[{"', b""]))
    closed = draw(st.booleans())
    body = opener * depth + inside + (closer * depth if closed else b"")
    return b'{"events": ' + body + b"}" if draw(st.booleans()) else body


bodies = st.one_of(
    st.just(b""),
    encoded(documents),
    encoded(documents),  # twice: valid shapes, if for another endpoint
    control_docs.map(str.encode),
    deep(),
    st.binary(max_size=300),
    text.map(lambda s: s.encode("utf-8", "surrogatepass")),
)

content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "application/vnd.api+json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
            None,
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30),
)
latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
API_AUTH = "Basic " + base64.b64encode(b"pk_emulator:sk_emulator").decode()


@st.composite
def headers(draw: st.DrawFn, credentials: bool = False) -> dict[str, bytes]:
    """Random headers; with `credentials`, a real User-Agent and Basic auth,
    so that the body is what decides the answer."""
    found: dict[str, bytes] = {}
    content_type = draw(
        mostly(st.just("application/json"), content_types)
        if credentials
        else content_types
    )
    if content_type is not None:
        found["content-type"] = content_type.encode("latin-1")
    if credentials:
        found["user-agent"] = UA.encode()
        found["authorization"] = API_AUTH.encode()
    else:
        found["user-agent"] = draw(st.sampled_from([UA, "", "curl/8"]) | latin1).encode(
            "latin-1"
        )
        found["authorization"] = draw(
            st.sampled_from([API_AUTH, "Basic", "Basic !!"])
            | latin1
            | latin1.map("Basic ".__add__)  # not base64, maybe not ASCII
        ).encode("latin-1")
    if draw(st.integers(0, 9)) == 0:  # a Content-Length that may lie
        found["content-length"] = draw(
            st.one_of(st.integers(0, 2**80).map(str), latin1)
        ).encode("latin-1")
    extra = draw(
        st.dictionaries(
            st.from_regex(r"x-[a-z]{1,8}", fullmatch=True), latin1, max_size=2
        )
    )
    found.update({k: v.encode("latin-1") for k, v in extra.items()})
    return found


ROUTED = [(m, path) for path, handlers in ROUTES.items() for m in handlers]
MISROUTED = [("PUT", "/batch/events"), ("DELETE", "/fetch/tags"), ("GET", "/nope")]


@st.composite
def api_requests(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """Mostly a routed method and path with a body made for it (valid, or
    valid but for one spoiled value), or any body at all; sometimes a path or
    method Bento does not have."""
    method, path = draw(mostly(st.sampled_from(ROUTED), st.sampled_from(MISROUTED)))
    if draw(st.booleans()):
        path += "/"
    made_for = DOCUMENTS.get(path.rstrip("/"), st.builds(dict))
    # Drawn explicitly: one_of() would flatten `bodies` into many branches.
    kind = draw(st.sampled_from(["valid", "spoiled", "spoiled", "any"]))
    if kind == "any":
        body = draw(bodies)
    else:
        body = draw(encoded(made_for if kind == "valid" else spoiled(made_for)))
    return method, "/api/v1" + path, body


CONTROL_TARGETS = [
    ("PUT", "/_emulator/rate-limit"),
    ("POST", "/_emulator/rate-limit"),
    ("GET", "/_emulator/rate-limit"),
    ("POST", "/_emulator/faults"),
    ("DELETE", "/_emulator/faults"),
    ("GET", "/_emulator/faults"),
    ("POST", "/_emulator/reset"),
    ("DELETE", "/_emulator/data"),
    ("GET", "/_emulator/requests"),
    ("DELETE", "/_emulator/requests"),
    ("GET", "/_emulator/requests/counts"),
    ("GET", "/_emulator/"),
    ("GET", "/_emulator/events"),
    ("DELETE", "/_emulator/tags"),
    ("GET", "/_emulator/nonsense"),
]
SITE = {"site_uuid": "emulator-site"}
# No surrogates here: a client cannot put one in a URL (httpx refuses).
queries = st.fixed_dictionaries(
    {},
    optional={
        "site_uuid": st.sampled_from(["emulator-site", "other"]) | plain,
        "email": st.just("a@example.com") | plain,
        "uuid": plain,
    },
)


# -- checks -----------------------------------------------------------------------------


def check(response: httpx.Response) -> None:
    """Never a 5xx; a 400 or 413 is JSON in Bento's shape."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code in (400, 413) and response.headers.get(
        "content-type", ""
    ).startswith("application/json"):
        doc = response.json()
        if "errors" in doc:
            assert all(
                isinstance(e["field"], str) and isinstance(e["message"], str)
                for e in doc["errors"]
            )
        else:
            assert isinstance(doc["error"], str), doc


def client(app: Any) -> httpx.AsyncClient:
    # raise_app_exceptions (the default): anything escaping the app fails the test.
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://127.0.0.1",
        trust_env=False,
    )


@pytest.fixture
def app() -> Iterator[Any]:
    """One app per test, reset by `fresh` for each example (far cheaper
    than a new app and SQLite database every time)."""
    made = create_app(EmulatorSettings(requests_per_minute=MAX_REQUESTS))
    yield made
    made.state.emulator.store.close()


@pytest.fixture
async def asgi(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as http:
        yield http


def fresh(app: Any) -> None:
    """Undo what the previous example did: data, log, faults, limit."""
    state = app.state.emulator
    state.reset()
    state.limiter.configure(MAX_REQUESTS, 60.0)


async def listings_still_work(http: httpx.AsyncClient) -> None:
    """What was accepted can be listed and summarised (JSON answers)."""
    for path in [*(f"/_emulator/{kind}" for kind in KINDS), "/_emulator/"]:
        response = await http.get(path, params={"meta": "1"})
        assert 200 == response.status_code, (path, response.text[:300])
        response.json()


# -- the fuzz tests -----------------------------------------------------------------------


async def send_to_api(
    app: Any,
    asgi: httpx.AsyncClient,
    request: tuple[str, str, bytes],
    sent_headers: dict[str, bytes],
    params: dict[str, str],
) -> None:
    fresh(app)
    method, path, body = request
    response = await asgi.request(
        method, path, content=body, headers=sent_headers, params=params
    )
    check(response)
    event(f"{response.status_code}")  # shown by --hypothesis-show-statistics
    if response.status_code < 300:
        await listings_still_work(asgi)
    assert [response.status_code] == [
        e["status"] for e in app.state.emulator.log.entries()
    ]


@pytest.mark.anyio
@fuzz(1500)
@given(request=api_requests(), sent_headers=headers(credentials=True))
async def test_api_bodies_never_get_500(
    app: Any,
    asgi: httpx.AsyncClient,
    request: tuple[str, str, bytes],
    sent_headers: dict[str, bytes],
) -> None:
    await send_to_api(app, asgi, request, sent_headers, SITE)


@pytest.mark.anyio
@fuzz(500)
@given(request=api_requests(), sent_headers=headers(), params=queries)
async def test_api_headers_and_queries_never_get_500(
    app: Any,
    asgi: httpx.AsyncClient,
    request: tuple[str, str, bytes],
    sent_headers: dict[str, bytes],
    params: dict[str, str],
) -> None:
    await send_to_api(app, asgi, request, sent_headers, params)


@pytest.mark.anyio
@fuzz(800)
@given(
    target=st.sampled_from(CONTROL_TARGETS),
    body=st.one_of(control_docs.map(str.encode), bodies),
    sent_headers=headers(),
)
async def test_control_api_never_gets_500(
    app: Any,
    asgi: httpx.AsyncClient,
    target: tuple[str, str],
    body: bytes,
    sent_headers: dict[str, bytes],
) -> None:
    fresh(app)
    method, path = target
    response = await asgi.request(method, path, content=body, headers=sent_headers)
    check(response)
    event(f"{response.status_code}")
    # Whatever it accepted is in force and readable; then an API request
    # meets it (unless a fault is queued: that one answers by design).
    assert 200 == (await asgi.get("/_emulator/rate-limit")).status_code
    assert 200 == (await asgi.get("/_emulator/faults")).status_code
    if not app.state.emulator.faults.snapshot()["queue"]:
        api = await asgi.post(
            "/api/v1/batch/events",
            json={"events": [{"type": "t", "email": "a@example.com"}]},
            params={"site_uuid": "emulator-site"},
            headers={"User-Agent": UA, "Authorization": API_AUTH},
        )
        check(api)


@pytest.mark.anyio
@fuzz(36)  # every combination below, about once
@given(
    cap=st.sampled_from([MiB, 10 * MiB]),
    chunk=st.sampled_from([4 * 1024, 64 * 1024, MiB]),
    declared=st.booleans(),
    target=st.sampled_from(
        [
            ("POST", "/api/v1/batch/events"),
            ("PUT", "/_emulator/rate-limit"),
            ("POST", "/_emulator/faults"),
        ]
    ),
)
async def test_over_cap_bodies_stay_out_of_memory(
    cap: int, chunk: int, declared: bool, target: tuple[str, str]
) -> None:
    """50 MB sent, at most the cap and a chunk or two held (tracemalloc)."""
    total = 50 * MiB
    app = create_app(EmulatorSettings(max_body_bytes=cap))

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(total // chunk):
            yield b"a" * chunk  # a fresh buffer each time, like a socket read

    sent = {"content-type": "application/json", "user-agent": UA}
    if declared:
        sent["content-length"] = str(total)
    tracemalloc.start()
    try:
        async with client(app) as http:
            response = await http.request(
                target[0], target[1], content=stream(), headers=sent
            )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    app.state.emulator.store.close()

    assert 413 == response.status_code
    # Read up to the cap, plus the chunk that crossed it and one in flight;
    # a declared length over the cap is refused before any is read.
    assert peak < (MiB if declared else cap + 3 * chunk + MiB), peak


@fuzz(300)
@given(
    value=st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), plain),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(plain, inner, max_size=3)
        ),
        max_leaves=6,
    ),
    wrappers=st.lists(st.booleans(), max_size=2 * MAX_DEPTH),
    ascii_only=st.booleans(),
)
def test_the_depth_limit_matches_the_parser(
    value: Any, wrappers: list[bool], ascii_only: bool
) -> None:
    """`parse_json` takes any JSON up to `MAX_DEPTH` deep, exactly as
    written, and refuses deeper, whatever brackets and quotes strings hold."""
    for as_list in wrappers:
        value = [value] if as_list else {'k[{"': value}
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()

    try:
        parsed: Any = parse_json(raw)
    except BodyError as refused:
        parsed = refused.body

    if depth(value) > MAX_DEPTH:
        assert {
            "error": f"Invalid JSON: nested deeper than {MAX_DEPTH} levels"
        } == parsed
    else:
        assert value == parsed


def depth(value: Any) -> int:
    """Nesting of arrays and objects, as Ruby's `max_nesting` counts it."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0
