"""`@track_event` on each kind of target; return values, exceptions,
signatures and coroutine-ness unchanged."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from bento_track import track_event
from bento_track.client import identify
from bento_track.errors import ConfigurationError

from .conftest import Failures, Recorder


def test_function_success_with_callables(recorder: Recorder) -> None:
    """Constants and callables of the `Call` build the event after a return."""

    @track_event(
        "invoice.paid",
        email=lambda call: call["user"],
        fields=lambda call: {"amount": call.result},
        details={"source": "test"},
        client=recorder.client,
    )
    def pay(user: str, amount: int = 5) -> int:
        """Pay an invoice."""
        return amount * 2

    assert 10 == pay("ann@example.com")

    [event] = recorder.events

    assert ("invoice.paid", "ann@example.com") == (event.type, event.email)
    assert {"amount": 10} == event.fields
    assert {"source": "test"} == event.details
    assert "Pay an invoice." == pay.__doc__
    assert "(user: 'str', amount: 'int' = 5) -> 'int'" == str(inspect.signature(pay))


def test_when_error_and_exception_unchanged(recorder: Recorder) -> None:
    """`when="error"` tracks the failure; the same exception propagates."""
    error = ValueError("no")

    @track_event(
        "job.failed",
        email="ops@example.com",
        details=lambda call: {"error": str(call.error)},
        when="error",
        client=recorder.client,
    )
    def job(fail: bool) -> str:
        if fail:
            raise error
        return "done"

    assert "done" == job(False)
    with pytest.raises(ValueError) as raised:
        job(True)

    assert raised.value is error
    assert [("job.failed", {"error": "no"})] == [
        (e.type, e.details) for e in recorder.events
    ]


def test_when_always(recorder: Recorder) -> None:
    """`when="always"` tracks both outcomes."""

    @track_event("x.ran", email="a@example.com", when="always", client=recorder.client)
    def run(fail: bool) -> None:
        if fail:
            raise KeyError("k")

    run(False)
    with pytest.raises(KeyError):
        run(True)

    assert ["x.ran", "x.ran"] == recorder.types()


def _kinds(client: Any) -> type:
    class Shop:
        owner = "cls@example.com"

        def __init__(self) -> None:
            self.owner = "self@example.com"

        @track_event("m", email=lambda call: call["self"].owner, client=client)
        def method(self, n: int) -> int:
            return n + 1

        @track_event("cm.outer", email=lambda call: call["cls"].owner, client=client)
        @classmethod
        def outer(cls, n: int) -> int:
            return n + 2

        @classmethod
        @track_event("cm.inner", email=lambda call: call["cls"].owner, client=client)
        def inner(cls, n: int) -> int:
            return n + 3

        @track_event(
            "sm", email=lambda call: f"n{call['n']}@example.com", client=client
        )
        @staticmethod
        def static(n: int) -> int:
            return n + 4

        @track_event("am", email=lambda call: call["self"].owner, client=client)
        async def amethod(self, n: int) -> int:
            await asyncio.sleep(0)
            return n + 5

    return Shop


def test_method(recorder: Recorder) -> None:
    """An instance method: `self` is among the bound arguments."""
    shop = _kinds(recorder.client)()

    assert 2 == shop.method(1)
    assert 2 == type(shop).method(shop, 1)  # called through the class
    assert [("m", "self@example.com")] * 2 == [
        (e.type, e.email) for e in recorder.events
    ]


def test_classmethods_both_orders(recorder: Recorder) -> None:
    """Outside and inside `@classmethod`, from the class and an instance."""
    shop_cls = _kinds(recorder.client)

    assert 3 == shop_cls.outer(1)
    assert 3 == shop_cls().outer(1)
    assert 4 == shop_cls.inner(1)
    assert [("cm.outer", "cls@example.com")] * 2 + [
        ("cm.inner", "cls@example.com")
    ] == [(e.type, e.email) for e in recorder.events]


def test_staticmethod(recorder: Recorder) -> None:
    """A staticmethod, from the class and an instance."""
    shop_cls = _kinds(recorder.client)

    assert 5 == shop_cls.static(1)
    assert 6 == shop_cls().static(2)
    assert ["n1@example.com", "n2@example.com"] == [e.email for e in recorder.events]


def test_async_function_and_method(recorder: Recorder) -> None:
    """`async def` stays a coroutine function; the event follows the await."""

    @track_event("af", email=lambda call: call.result, client=recorder.client)
    async def fetch(email: str) -> str:
        """Fetch."""
        await asyncio.sleep(0)
        return email

    shop = _kinds(recorder.client)()

    assert inspect.iscoroutinefunction(fetch)
    assert inspect.iscoroutinefunction(shop.amethod)
    assert inspect.iscoroutinefunction(type(shop).amethod)
    assert "(email: 'str') -> 'str'" == str(inspect.signature(fetch))
    assert "f@example.com" == asyncio.run(fetch("f@example.com"))
    assert 6 == asyncio.run(shop.amethod(1))
    assert [("af", "f@example.com"), ("am", "self@example.com")] == [
        (e.type, e.email) for e in recorder.events
    ]


def test_async_error(recorder: Recorder) -> None:
    """An async function's exception is tracked (when asked) and re-raised."""
    error = RuntimeError("async no")

    @track_event(
        "af.failed", email="a@example.com", when="error", client=recorder.client
    )
    async def broken() -> None:
        raise error

    with pytest.raises(RuntimeError) as raised:
        asyncio.run(broken())

    assert raised.value is error
    assert ["af.failed"] == recorder.types()


def test_email_from_context(recorder: Recorder) -> None:
    """No `email=`: the identity bound with `identify()` is used."""

    @track_event("ctx.used", client=recorder.client)
    def work() -> None:
        pass

    def run() -> None:
        identify("ctx@example.com")
        work()

    import contextvars

    contextvars.copy_context().run(run)

    assert ["ctx@example.com"] == [e.email for e in recorder.events]


def test_enabled_switch(recorder: Recorder) -> None:
    """`enabled=False` returns the function itself; a callable is checked per call."""
    state = {"on": False}

    def plain() -> int:
        return 1

    switch = track_event("off", email="a@example.com", enabled=False)

    @track_event(
        "toggled",
        email="a@example.com",
        enabled=lambda: state["on"],
        client=recorder.client,
    )
    def toggled() -> int:
        return 2

    toggled()
    state["on"] = True
    toggled()

    assert switch(plain) is plain
    assert ["toggled"] == recorder.types()


def test_failures_never_reach_the_caller(
    recorder: Recorder, failures: Failures
) -> None:
    """A raising option callable and invalid data are counted, not raised."""

    @track_event("a.b", email=lambda call: 1 / 0, client=recorder.client)
    def one() -> str:
        return "one"

    @track_event(
        "a.b", email="a@example.com", fields={"x": [1]}, client=recorder.client
    )
    def two() -> str:
        return "two"

    @track_event("a.b", client=recorder.client)  # no identity anywhere
    def three() -> str:
        return "three"

    assert ("one", "two", "three") == (one(), two(), three())
    assert 1 == failures.internal
    assert 2 == failures.invalid
    assert [] == recorder.events


def test_bad_options() -> None:
    """A bad `when` or type fails at decoration."""
    with pytest.raises(ConfigurationError):
        track_event("x", when="sometimes")
    with pytest.raises(ConfigurationError):
        track_event("  ")
