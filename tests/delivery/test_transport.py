"""`Client(transport=...)`: the delivery thread sends through the app's
httpx transport (a proxy-aware or instrumented one; a MockTransport in tests
that need no server)."""

from __future__ import annotations

import json

import httpx

import bento_track

from ..helpers import seqs


class Counting(httpx.HTTPTransport):
    """An instrumented transport: counts what it sends, sends it for real."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_delivery_goes_through_the_apps_transport(fast_emulator, clients) -> None:
    transport = Counting()
    client = clients(
        **fast_emulator.client_kwargs(), flush_interval=0.05, transport=transport
    )
    for i in range(5):
        client.track("a", email="t@example.com", details={"seq": i})
    assert client.flush(10) is True
    assert sorted(seqs(fast_emulator)) == list(range(5))
    assert transport.paths and set(transport.paths) == {"/api/v1/batch/events"}
    assert len(transport.paths) == client.stats().requests


def test_a_mock_transport_needs_no_server(clients) -> None:
    seen: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        assert request.headers["authorization"].startswith("Basic ")
        return httpx.Response(200, json={"results": 2, "failed": 0})

    client = clients(
        site_uuid="s",
        publishable_key="p",
        secret_key="k",
        base_url="https://bento.invalid/api/v1",
        flush_interval=0.05,
        transport=httpx.MockTransport(answer),
    )
    client.track("a", email="m@example.com")
    client.track("b", email="m@example.com")
    assert client.flush(10) is True
    assert [e["type"] for body in seen for e in body["events"]] == ["a", "b"]
    assert client.stats().sent == 2


def test_init_takes_the_transport_too(fast_emulator) -> None:
    transport = Counting()
    client = bento_track.init(
        **fast_emulator.client_kwargs(), flush_interval=0.05, transport=transport
    )
    try:
        bento_track.track("a", email="i@example.com", details={"seq": 1})
        assert bento_track.flush(10) is True
        assert transport.paths == ["/api/v1/batch/events"]
        assert client is bento_track.get_client()
    finally:
        bento_track.shutdown()
