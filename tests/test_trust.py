"""Trust (issue 10): receivers cannot hurt delivery, bad text never reaches the
encoder, lenient by default and strict on request, and every drop is said.
Delivery is proven against the emulator over loopback HTTP."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import bento_track
from bento_track import signals
from bento_track.errors import InvalidEventError
from bento_track.events import Event

FAST = dict(requests_per_minute=10_000, rate_window=60.0, flush_interval=0.05)
SIGNALS = ("event_captured", "batch_sent", "batch_failed", "event_dropped")


def _seqs(emulator) -> list[int]:
    return sorted(e["details"]["seq"] for e in emulator.inspect.events())


@pytest.mark.parametrize("name", SIGNALS)
def test_a_raising_receiver_loses_nothing(name, fast_emulator, clients, caplog) -> None:
    """A receiver raising on any one signal: track() never raises, the poison
    event is isolated by bisection, the other 999 are delivered, flush() is True."""
    fast_emulator.inspect.reject_events(email="poison@example.com")
    client = clients(**fast_emulator.client_kwargs(), **dict(FAST, flush_interval=60.0))
    calls: list[str] = []
    good_calls: list[str] = []

    def boom(sender, **kwargs):
        calls.append(name)
        raise RuntimeError("receiver bug")

    def good(sender, **kwargs):
        good_calls.append(name)

    signal = getattr(signals, name)
    signal.connect(boom, sender=client)
    signal.connect(good, sender=client)
    try:
        with caplog.at_level(logging.ERROR, logger="bento_track"):
            for i in range(1000):
                email = "poison@example.com" if i == 617 else f"u{i}@example.com"
                event = client.track("a", email=email, details={"seq": i})
                assert isinstance(event, Event)
            assert client.flush(20) is True
    finally:
        signal.disconnect(boom)
        signal.disconnect(good)
    seqs = _seqs(fast_emulator)
    assert len(seqs) == 999 and 617 not in seqs
    assert calls and len(good_calls) == len(calls)  # the other receiver still ran
    stats = client.stats()
    assert stats.receiver_errors == len(calls)
    assert stats.dropped == {"rejected": 1}
    # Logged with its traceback, once (a minute) per receiver however often it fails.
    logged = [r for r in caplog.records if "receiver" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert client.flush(1) is True


def test_lone_surrogates_are_refused_and_the_drain_goes_on(
    fast_emulator, clients
) -> None:
    client = clients(**fast_emulator.client_kwargs(), **FAST)
    bad = [
        dict(details={"m": "\ud800"}),
        dict(fields={"name": "x\udfff"}),
        dict(type="signup\ud83d"),
    ]
    results = []
    for i in range(23):
        if i % 8 == 3 and bad:
            case = bad.pop(0)
            results.append(
                client.track(
                    case.get("type", "t"),  # type: ignore[arg-type]
                    email="u@example.com",
                    fields=case.get("fields"),
                    details={"seq": -1, **case.get("details", {})},
                )
            )
        else:
            client.track("t", email="u@example.com", details={"seq": i})
    assert results == [None, None, None]
    assert client.flush(10) is True
    assert len(_seqs(fast_emulator)) == 20
    assert client.stats().dropped == {"invalid": 3}
    client.track("t", email="u@example.com", details={"seq": 99})
    assert client.flush(10) is True
    assert client.flush(1) is True


def test_strict_mode_names_the_surrogate_field(clients) -> None:
    client = clients(disabled=True, environ={}, strict=True)
    with pytest.raises(InvalidEventError) as info:
        client.track("t", email="u@example.com", details={"cart": {"m": "\ud800"}})
    assert info.value.field == "details.cart.m"
    assert "surrogate" in str(info.value)


def test_an_unencodable_event_is_dropped_alone(fast_emulator, clients, caplog) -> None:
    """Defence in depth: an event that slipped past validation (built with the
    trusted constructor) is dropped alone as `unencodable`; the rest go on."""
    client = clients(**fast_emulator.client_kwargs(), **dict(FAST, flush_interval=60.0))
    with caplog.at_level(logging.WARNING, logger="bento_track"):
        for i in range(10):
            client.track("t", email="u@example.com", details={"seq": i})
        client.capture(Event("t", "u@example.com", None, {"seq": 5, "m": "\udc80"}))
        client.capture(Event("t", "u@example.com", None, {"seq": 6, "n": 2**70}))
        assert client.flush(10) is True
    assert _seqs(fast_emulator) == list(range(10))
    assert client.stats().dropped == {"unencodable": 2}
    said = [r.getMessage() for r in caplog.records if "unencodable" in r.getMessage()]
    assert len(said) == 1  # rate-limited: one line, the next one carries the count
    assert client.flush(1) is True


def test_an_oversize_event_is_said_with_its_type_and_size(
    fast_emulator, clients, caplog
) -> None:
    client = clients(**fast_emulator.client_kwargs(), **FAST, max_batch_bytes=2048)
    with caplog.at_level(logging.WARNING, logger="bento_track"):
        client.track("big.one", email="u@example.com", details={"blob": "x" * 5000})
        assert client.flush(10) is True
    assert client.stats().dropped == {"oversize": 1}
    said = [r.getMessage() for r in caplog.records if "oversize" in r.getMessage()]
    assert len(said) == 1
    assert "'big.one'" in said[0] and "50" in said[0] and "bytes" in said[0]


def test_queue_full_drops_are_said_once_a_minute_with_a_count(clients, caplog) -> None:
    client = clients(
        disabled=False,
        **FAST,
        max_queue_size=1,
        site_uuid="s",
        publishable_key="p",
        secret_key="k",
        base_url="http://127.0.0.1:9/api/v1",
    )
    with caplog.at_level(logging.WARNING, logger="bento_track"):
        for _ in range(5):
            client.track("t", email="u@example.com")
    assert client.stats().dropped == {"queue_full": 4}
    said = [r.getMessage() for r in caplog.records if "queue_full" in r.getMessage()]
    assert len(said) == 1 and "(1 since the last" in said[0]


def test_lenient_invalid_event_is_counted_signalled_and_logged(clients, caplog) -> None:
    client = clients(disabled=True, environ={})
    seen: list[dict] = []

    def on_drop(sender, **kwargs):
        seen.append(kwargs)

    signals.event_dropped.connect(on_drop, sender=client)
    try:
        with caplog.at_level(logging.WARNING, logger="bento_track"):
            assert client.track("t", email="not-an-email") is None
            assert client.track("t", email="not-an-email") is None
            assert client.track("t", email="u@example.com", fields={"a": {}}) is None
    finally:
        signals.event_dropped.disconnect(on_drop)
    assert client.stats().dropped == {"invalid": 3}
    assert [k["reason"] for k in seen] == ["invalid"] * 3
    assert "well-formed" in seen[0]["message"]
    assert isinstance(seen[0]["error"], InvalidEventError)
    warnings = [r.getMessage() for r in caplog.records if "invalid" in r.getMessage()]
    # Each distinct message at most once a minute: two distinct problems.
    assert len(warnings) == 2


def test_bento_strict_variable_turns_strict_mode_on(clients) -> None:
    client = clients(disabled=True, environ={"BENTO_STRICT": "1"})
    assert client.strict is True
    with pytest.raises(InvalidEventError):
        client.track("t", email="nope")


def _anonymous_app(client: bento_track.Client) -> Starlette:
    async def report(request: Request) -> PlainTextResponse:
        event = bento_track.track("report.viewed")  # no identity in this request
        return PlainTextResponse("tracked" if event else "not tracked")

    app = Starlette(routes=[Route("/report", report)])
    return bento_track.BentoMiddleware(app, client=client)  # type: ignore[return-value]


@pytest.mark.anyio
async def test_anonymous_track_in_a_view_answers_200_by_default(
    clients, monkeypatch
) -> None:
    from bento_track import _default

    client = clients(disabled=True, environ={})
    monkeypatch.setattr(_default, "_client", client)
    transport = httpx.ASGITransport(app=_anonymous_app(client))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/report")
    assert response.status_code == 200 and response.text == "not tracked"
    assert client.stats().dropped == {"invalid": 1}


@pytest.mark.anyio
async def test_anonymous_track_in_a_view_raises_in_strict_mode(
    clients, monkeypatch
) -> None:
    from bento_track import _default

    client = clients(disabled=True, environ={}, strict=True)
    monkeypatch.setattr(_default, "_client", client)
    transport = httpx.ASGITransport(
        app=_anonymous_app(client), raise_app_exceptions=True
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        with pytest.raises(InvalidEventError) as info:
            await http.get("/report")
    assert info.value.field == "email"
