"""Secrets never show (issue 10): delivery and the API clients run at DEBUG
level through 401, 5xx, timeouts, dropped connections and configuration
errors, against the emulator over loopback; every log record (message, args,
traceback), every repr, every `str()` of an exception and of `stats()` is
scanned for the secret key and the Basic credential."""

from __future__ import annotations

import base64
import logging
import traceback
from typing import Any

import pytest

import bento_track
from bento_track.api import BentoAPI
from bento_track.errors import APIError, BentoError

FAST = dict(requests_per_minute=10_000, rate_window=60.0, flush_interval=0.05)


class Everything(logging.Handler):
    """Keeps every record of every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        self.texts.append(repr(record.args))
        self.texts.append(repr(record.__dict__))


@pytest.fixture
def everything():
    handler = Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _forbidden(secret: str, publishable: str) -> list[str]:
    basic = base64.b64encode(f"{publishable}:{secret}".encode()).decode()
    return [secret, basic, f"Basic {basic}"]


def _scan(texts: list[str], forbidden: list[str]) -> list[str]:
    return [t[:200] for t in texts for f in forbidden if f in t]


def test_delivery_through_every_failure_never_shows_the_secret(
    emulator, everything
) -> None:
    emulator.inspect.set_rate_limit(10_000, 60.0)
    kwargs = emulator.client_kwargs()
    forbidden = _forbidden(kwargs["secret_key"], kwargs["publishable_key"])
    seen: list[str] = []

    def keep(sender: Any, **kw: Any) -> None:
        seen.append(repr(kw))
        error = kw.get("error")
        if error is not None:
            seen.extend([str(error), repr(error)])

    for name in ("batch_failed", "event_dropped", "batch_sent"):
        getattr(bento_track.signals, name).connect(keep)
    client = bento_track.Client(
        **kwargs, **FAST, read_timeout=0.3, retry_base_delay=0.01
    )
    try:
        emulator.inspect.fail_next(2, status=500)
        emulator.inspect.fail_next(1, status=503, retry_after=1)
        emulator.inspect.slow_next(1, seconds=1.0)  # beyond read_timeout
        emulator.inspect.drop_next(1)
        emulator.inspect.reject_events(email="poison@example.com")
        for i in range(20):
            email = "poison@example.com" if i == 7 else f"u{i}@example.com"
            client.track("t", email=email, details={"seq": i})
        assert client.flush(20) is True
        assert client.stats().receiver_errors == 0  # `keep` itself never failed
        seen += [repr(client), str(client.stats()), repr(client.stats())]
    finally:
        client.shutdown(1)
        for name in ("batch_failed", "event_dropped", "batch_sent"):
            getattr(bento_track.signals, name).disconnect(keep)

    # 401: the emulator refuses a wrong key; the wrong key is secret too.
    wrong = dict(kwargs, secret_key="sk_wrong_but_still_secret")
    forbidden += _forbidden(wrong["secret_key"], wrong["publishable_key"])
    refused = bento_track.Client(**wrong, **FAST)
    try:
        refused.track("t", email="u@example.com")
        assert refused.flush(5) is False
        stats = refused.stats()
        assert stats.auth_failed
        seen += [repr(refused), str(stats), repr(stats), str(stats.last_error)]
    finally:
        refused.shutdown(0.5)

    with BentoAPI(**wrong, max_retries=0) as api:
        seen.append(repr(api))
        with pytest.raises(APIError) as info:
            api.get_tags()
        seen += [
            str(info.value),
            repr(info.value),
            *traceback.format_exception(info.value),
        ]

    assert any("401" in t for t in seen + everything.texts)  # the 401 path ran
    assert any("500" in t or "503" in t for t in seen + everything.texts)
    assert _scan(seen + everything.texts, forbidden) == []


def test_configuration_errors_never_show_the_secret(everything) -> None:
    secret = "sk_live_do_not_print"
    texts: list[str] = []
    for bad in (
        dict(base_url="ftp://example.com"),
        dict(base_url="http://remote.example.com/api/v1"),
        dict(base_url="https://user:pw@example.com"),
        dict(read_timeout="slow"),
        dict(publishable_key="bad key"),
    ):
        with pytest.raises(BentoError) as info:
            bento_track.Client(
                **{
                    "site_uuid": "s",
                    "publishable_key": "pk",
                    "secret_key": secret,
                    **bad,
                }
            )
        texts += [str(info.value), repr(info.value)]
    with pytest.raises(BentoError) as info:
        bento_track.Client(site_uuid="s", publishable_key="pk", secret_key=secret + " ")
    texts += [str(info.value), repr(info.value)]
    assert _scan(texts + everything.texts, [secret]) == []
