"""The per-account sliding window, with an injected clock: nothing waits."""

from __future__ import annotations

import httpx
import pytest

from bento_track.emulator import EmulatorServer
from bento_track.emulator.ratelimit import SlidingWindowLimiter

from .conftest import FakeClock, bento_client

BODY = {"events": [{"type": "t", "email": "a@example.com"}]}


def test_window_log_unit(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(3, 10.0, clock)

    assert [0, 0] == [limiter.acquire("pk"), limiter.acquire("pk")]
    clock.advance(4)
    assert 0 == limiter.acquire("pk")  # t=4: three in the window
    assert 6 == limiter.acquire("pk")  # the t=0 pair frees a slot at t=10
    assert 0 == limiter.acquire("other")  # per key
    clock.advance(5.5)
    assert 1 == limiter.acquire("pk")  # 0.5 s left rounds up to 1
    clock.advance(0.5)
    assert 0 == limiter.acquire("pk")  # t=10: both t=0 requests left
    assert 0 == limiter.acquire("pk")
    assert 4 == limiter.acquire("pk")  # t=4 frees at 14


def test_lowering_the_limit_at_run_time(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(5, 10.0, clock)
    for _ in range(4):
        assert 0 == limiter.acquire("pk")
        clock.advance(1)
    limiter.configure(2, 10.0)  # t=4, four in the window (t=0..3)

    # To take one more, three of the four must leave: the t=2 entry leaves
    # at t=12, eight seconds from now.
    assert 8 == limiter.acquire("pk")
    clock.advance(8)
    assert 0 == limiter.acquire("pk")


@pytest.mark.anyio
async def test_429_after_the_limit_with_retry_after(
    inprocess, clock: FakeClock
) -> None:
    api = inprocess(requests_per_minute=3, rate_window=60.0)

    ok = [(await api.post("/batch/events", json=BODY)).status_code for _ in range(3)]
    clock.advance(20)
    limited = await api.post("/batch/events", json=BODY)
    clock.advance(39)
    still = await api.get("/fetch/tags")
    clock.advance(1)
    freed = await api.get("/fetch/tags")

    assert [200, 200, 200] == ok
    assert 429 == limited.status_code
    assert {"error": "Too many requests"} == limited.json()
    assert "40" == limited.headers["retry-after"]
    assert (429, "1") == (still.status_code, still.headers["retry-after"])
    assert 200 == freed.status_code  # refused requests did not use the window
    state = api.app.state.emulator
    assert [1000.0, 1000.0, 1000.0, 1020.0, 1059.0, 1060.0] == [
        r["time"] for r in state.log.entries()
    ]


@pytest.mark.anyio
async def test_checks_run_in_bentos_order(inprocess) -> None:
    """Auth before the rate limit; the rate limit before body validation."""
    api = inprocess(requests_per_minute=1, rate_window=60.0)
    assert 200 == (await api.get("/fetch/tags")).status_code

    wrong_key = await api.get("/fetch/tags", auth=("pk_emulator", "nope"))
    no_agent = await api.get("/fetch/tags", headers={"User-Agent": ""}, auth=None)
    invalid = await api.post("/batch/events", json={"events": []})

    assert 401 == wrong_key.status_code
    assert 403 == no_agent.status_code
    assert 429 == invalid.status_code


@pytest.mark.anyio
async def test_set_rate_limit_at_run_time(inprocess, clock: FakeClock) -> None:
    api = inprocess(requests_per_minute=100, rate_window=60.0)
    inspect = httpx.AsyncClient(
        transport=api._transport, base_url="http://127.0.0.1/_emulator"
    )
    changed = await inspect.put(
        "/rate-limit", json={"requests": 2, "window_seconds": 5}
    )
    answers = [(await api.get("/fetch/tags")).status_code for _ in range(3)]
    clock.advance(5)
    after = (await api.get("/fetch/tags")).status_code
    bad = await inspect.put("/rate-limit", json={"requests": 0})
    await inspect.aclose()

    assert {"requests": 2, "window_seconds": 5.0} == {
        k: changed.json()[k] for k in ("requests", "window_seconds")
    }
    assert [200, 200, 429] == answers
    assert 200 == after
    assert 400 == bad.status_code


def test_fake_clock_over_loopback() -> None:
    """`EmulatorServer(clock=...)` drives the limiter of a real server."""
    clock = FakeClock()
    with EmulatorServer(
        port=0, requests_per_minute=2, rate_window=30.0, clock=clock
    ) as server:
        with bento_client(server) as http:
            answers = [http.post("/batch/events", json=BODY) for _ in range(3)]
            clock.advance(30)
            after = http.post("/batch/events", json=BODY)
        counts = server.inspect.request_counts()

    assert [200, 200, 429] == [a.status_code for a in answers]
    assert "30" == answers[2].headers["retry-after"]
    assert 200 == after.status_code
    assert {"200": 3, "429": 1} == counts


def test_reset_clears_the_window_but_keeps_the_limit(emulator) -> None:
    emulator.inspect.set_rate_limit(1, 600)
    with bento_client(emulator) as http:
        assert 200 == http.get("/fetch/tags").status_code
        assert 429 == http.get("/fetch/tags").status_code
        emulator.inspect.reset()
        assert 200 == http.get("/fetch/tags").status_code
        assert 429 == http.get("/fetch/tags").status_code
    assert 1 == emulator.inspect.rate_limit()["requests"]
