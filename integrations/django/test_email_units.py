"""The Django email backend in this process, against the emulator over
loopback HTTP: how messages map, what Bento cannot carry, nothing half-sent,
request splitting, retries, the shared budget, Django's return counts and
`fail_silently`. (The same backend under real servers, with Django's own
mail functions and views: `test_email_e2e.py`.)"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        EMAIL_BACKEND="bento_track.integrations.django.EmailBackend",
        DEFAULT_FROM_EMAIL="Acme <hello@example.com>",
        INSTALLED_APPS=[],
    )
    django.setup()

from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import override_settings

from bento_track import Client
from bento_track.config import ENV_VARS
from bento_track.errors import InvalidEventError, UnprocessableError
from bento_track.integrations.django import EmailBackend
from bento_track.integrations.django.email import BentoStatus
from bento_track.integrations.django.email_message import (
    UnsupportedFeatureError,
    text_as_html,
)
from bento_track.models import BatchResult
from bento_track.testing import use_default_client

AUTHOR = "hello@example.com"


@pytest.fixture
def bento(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The emulator as the account (in `BENTO_TRACK`, no `BENTO_*`
    variables), and a default client sending there."""
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    client = Client(**emulator.client_kwargs(), environ={})
    try:
        with use_default_client(client):
            with override_settings(BENTO_TRACK=dict(emulator.client_kwargs())):
                yield emulator
    finally:
        client.shutdown(1)


def emails(emulator: Any) -> list[dict[str, Any]]:
    return list(emulator.inspect.emails())


def email_posts(emulator: Any) -> list[dict[str, Any]]:
    return [r for r in emulator.inspect.requests() if r["path"].endswith("/emails")]


# -- mapping ------------------------------------------------------------------------


def test_text_is_shown_as_written(bento: Any) -> None:
    text = "Hi <Ann> & co,\n  {{ not liquid }} {% neither %}\n\n-- \nAcme"
    assert mail.send_mail("Hello", text, None, ["Ann <ann@example.com>"]) == 1
    [sent] = emails(bento)
    assert sent == {
        "to": "ann@example.com",
        "from": AUTHOR,  # DEFAULT_FROM_EMAIL, its display name dropped
        "subject": "Hello",
        "html_body": text_as_html(text),
        "transactional": True,
    }
    assert sent["html_body"] == (
        '<div style="white-space: pre-wrap">Hi &lt;Ann&gt; &amp; co,\n'
        "  &#123;&#123; not liquid &#125;&#125; &#123;% neither %&#125;\n\n-- \nAcme</div>"
    )


def test_html_alternative_or_body_is_sent_as_is(bento: Any) -> None:
    alternative = mail.EmailMultiAlternatives(
        "A", "text part", AUTHOR, ["a@example.com"]
    )
    alternative.attach_alternative("<p>Hi {{ name }}</p>", "text/html")
    body = mail.EmailMessage("B", "<h1>B</h1>", AUTHOR, ["b@example.com"])
    body.content_subtype = "html"
    with mail.get_connection() as connection:
        assert connection.send_messages([alternative, body]) == 2
    assert [(e["subject"], e["html_body"]) for e in emails(bento)] == [
        ("A", "<p>Hi {{ name }}</p>"),
        ("B", "<h1>B</h1>"),
    ]


def test_one_bento_email_per_recipient_and_merge_data(bento: Any) -> None:
    message = mail.EmailMultiAlternatives(
        "Hi {{ name }}",
        "",
        AUTHOR,
        ["a@example.com", "Bee <b@example.com>", "c@example.com"],
    )
    message.attach_alternative("<p>{{ name }}, {{ offer }}</p>", "text/html")
    message.merge_global_data = {"name": "friend", "offer": "5%"}
    message.merge_data = {"b@example.com": {"name": "Bee"}}
    message.bento_transactional = False
    assert message.send() == 1  # one message, whatever its recipients
    assert message.bento_status.status == {"queued"}
    assert [
        (e["to"], e.get("personalizations"), e["transactional"]) for e in emails(bento)
    ] == [
        ("a@example.com", {"name": "friend", "offer": "5%"}, False),
        ("b@example.com", {"name": "Bee", "offer": "5%"}, False),
        ("c@example.com", {"name": "friend", "offer": "5%"}, False),
    ]
    [request] = email_posts(bento)
    assert request["count"] == 3


def test_merge_data_turns_liquid_on_in_a_text_body(bento: Any) -> None:
    message = mail.EmailMessage("Hi", "Dear {{ name }}", AUTHOR, ["a@example.com"])
    message.merge_global_data = {"name": "Ann"}
    assert message.send() == 1
    [sent] = emails(bento)
    assert "Dear {{ name }}" in sent["html_body"]


def test_transactional_default_is_an_option(bento: Any) -> None:
    with mail.get_connection(transactional=False) as connection:
        connection.send_messages(
            [mail.EmailMessage("S", "b", AUTHOR, ["a@example.com"])]
        )
    assert emails(bento)[0]["transactional"] is False


# -- what Bento cannot carry ---------------------------------------------------------------


def unsupported_messages() -> list[tuple[str, Any]]:
    attached = mail.EmailMessage("S", "b", AUTHOR, ["a@example.com"])
    attached.attach("invoice.pdf", b"%PDF", "application/pdf")
    calendar = mail.EmailMultiAlternatives("S", "b", AUTHOR, ["a@example.com"])
    calendar.attach_alternative("BEGIN:VCALENDAR", "text/calendar")
    templated = mail.EmailMessage("S", "b", AUTHOR, ["a@example.com"])
    templated.template_id = "welcome"
    return [
        ("attachments", attached),
        (
            "cc",
            mail.EmailMessage(
                "S", "b", AUTHOR, ["a@example.com"], cc=["c@example.com"]
            ),
        ),
        (
            "bcc",
            mail.EmailMessage("S", "b", AUTHOR, ["a@example.com"], ["d@example.com"]),
        ),
        (
            "reply_to",
            mail.EmailMessage(
                "S", "b", AUTHOR, ["a@example.com"], reply_to=["r@example.com"]
            ),
        ),
        (
            "headers",
            mail.EmailMessage(
                "S", "b", AUTHOR, ["a@example.com"], headers={"X-Tag": "1"}
            ),
        ),
        ("alternatives", calendar),
        ("template_id", templated),
    ]


@pytest.mark.parametrize(
    ("feature", "index"), [(f, i) for i, (f, _) in enumerate(unsupported_messages())]
)
def test_what_bento_cannot_carry_is_refused_by_name(
    bento: Any, feature: str, index: int
) -> None:
    message = unsupported_messages()[index][1]
    with pytest.raises(UnsupportedFeatureError) as caught:
        message.send()
    assert caught.value.features == [feature]
    assert f"cannot carry {feature}" in str(caught.value)
    assert "'unsupported': 'drop'" in str(caught.value)
    assert message.bento_status.status == {"invalid"}
    assert emails(bento) == [] and email_posts(bento) == []


def test_or_dropped_with_a_warning_when_asked(
    bento: Any, caplog: pytest.LogCaptureFixture
) -> None:
    messages = [m for _, m in unsupported_messages()]
    with caplog.at_level(logging.WARNING, logger="bento_track"):
        with mail.get_connection(unsupported="drop") as connection:
            assert connection.send_messages(messages) == len(messages)
    assert [e["to"] for e in emails(bento)] == ["a@example.com"] * len(messages)
    said = "\n".join(r.getMessage() for r in caplog.records)
    for text in (
        "attachments (invoice.pdf)",
        "cc (1 address)",
        "bcc (1 address)",
        "reply_to (1 address)",
        "headers (X-Tag)",
        "alternatives (text/calendar)",
        "template_id (django-anymail)",
    ):
        assert text in said
    assert messages[0].bento_status.dropped == ["attachments (invoice.pdf)"]


def test_nothing_is_half_sent(bento: Any, caplog: pytest.LogCaptureFixture) -> None:
    def batch() -> list[Any]:
        bad = mail.EmailMessage("Bad", "b", AUTHOR, ["x@example.com", "y@example.com"])
        bad.attach("a.txt", "x", "text/plain")
        return [
            mail.EmailMessage("One", "b", AUTHOR, ["a@example.com"]),
            bad,
            mail.EmailMessage("Three", "b", AUTHOR, ["c@example.com"]),
        ]

    loud = batch()
    with pytest.raises(UnsupportedFeatureError):
        EmailBackend().send_messages(loud)
    assert email_posts(bento) == []  # not even the good ones
    assert loud[0].bento_status.status == {"failed"}
    assert loud[1].bento_status.status == {"invalid"}

    quiet = batch()
    with caplog.at_level(logging.WARNING, logger="bento_track"):
        assert EmailBackend(fail_silently=True).send_messages(quiet) == 2
    assert "cannot carry attachments (a.txt)" in caplog.text
    assert sorted(e["subject"] for e in emails(bento)) == ["One", "Three"]
    assert [m.bento_status.status for m in quiet] == [
        {"queued"},
        {"invalid"},
        {"queued"},
    ]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (
            lambda: mail.EmailMessage(
                "S", "b", "webmaster@localhost", ["a@example.com"]
            ),
            "from_email",
        ),
        (
            lambda: mail.EmailMessage("S", "b", AUTHOR, ["a@example.com", "nobody"]),
            "to[1]",
        ),
        (lambda: mail.EmailMessage("", "b", AUTHOR, ["a@example.com"]), "subject"),
    ],
)
def test_malformed_messages_name_the_field(bento: Any, make: Any, field: str) -> None:
    message = make()
    with pytest.raises(InvalidEventError) as caught:
        message.send()
    assert caught.value.field == field
    assert message.bento_status.status == {"invalid"}
    assert email_posts(bento) == []


def test_bad_merge_data_and_transactional_are_refused(bento: Any) -> None:
    nested = mail.EmailMessage("S", "b", AUTHOR, ["a@example.com"])
    nested.merge_global_data = {"user": {"name": "Ann"}}
    with pytest.raises(InvalidEventError, match="personalizations.user"):
        nested.send()
    flag = mail.EmailMessage("S", "b", AUTHOR, ["a@example.com"])
    flag.bento_transactional = "yes"
    with pytest.raises(InvalidEventError, match="bento_transactional"):
        flag.send()
    assert email_posts(bento) == []


def test_a_message_without_recipients_is_not_sent_nor_counted(bento: Any) -> None:
    assert EmailBackend().send_messages([mail.EmailMessage("S", "b", AUTHOR, [])]) == 0
    assert EmailBackend().send_messages([]) == 0
    assert email_posts(bento) == []


# -- requests, retries, failures ----------------------------------------------------------


def test_requests_carry_60_emails_and_keep_a_message_together(bento: Any) -> None:
    many = [
        mail.EmailMessage(f"n{i}", "b", AUTHOR, [f"u{i}@example.com"])
        for i in range(130)
    ]
    with mail.get_connection() as connection:
        assert connection.send_messages(many) == 130
    assert [r["count"] for r in email_posts(bento)] == [60, 60, 10]

    bento.inspect.clear("requests")
    group = mail.EmailMessage(
        "g", "b", AUTHOR, [f"g{i}@example.com" for i in range(10)]
    )
    first = [
        mail.EmailMessage(f"m{i}", "b", AUTHOR, [f"m{i}@example.com"])
        for i in range(55)
    ]
    big = mail.EmailMessage(
        "big", "b", AUTHOR, [f"b{i}@example.com" for i in range(61)]
    )
    assert EmailBackend().send_messages([*first, group, big]) == 57
    # The group of 10 does not fit beside 55: it starts the next request;
    # 61 recipients cannot travel in one.
    assert [r["count"] for r in email_posts(bento)] == [55, 60, 11]


def test_5xx_and_429_are_retried(bento: Any) -> None:
    bento.inspect.fail_next(1, status=503)
    assert mail.send_mail("S", "b", AUTHOR, ["a@example.com"]) == 1
    assert [r["status"] for r in email_posts(bento)] == [503, 200]

    bento.inspect.clear("requests")
    bento.inspect.fail_next(1, status=429, retry_after=1)
    assert mail.send_mail("S", "b", AUTHOR, ["a@example.com"]) == 1
    posts = email_posts(bento)
    assert [r["status"] for r in posts] == [429, 200]
    assert posts[1]["time"] - posts[0]["time"] >= 0.9  # the pause was kept


def test_a_refused_request_stops_the_call(
    bento: Any, caplog: pytest.LogCaptureFixture
) -> None:
    many = [
        mail.EmailMessage(f"n{i}", "b", AUTHOR, [f"u{i}@example.com"])
        for i in range(70)
    ]
    bento.inspect.fail_next(1, status=422, body={"error": "Author not authorized"})
    with pytest.raises(UnprocessableError):
        EmailBackend().send_messages(many)
    assert [r["status"] for r in email_posts(bento)] == [
        422
    ]  # not retried, not continued
    assert all(m.bento_status.status == {"failed"} for m in many)
    assert isinstance(many[69].bento_status.error, UnprocessableError)

    bento.inspect.clear("requests")
    again = [
        mail.EmailMessage(f"n{i}", "b", AUTHOR, [f"u{i}@example.com"])
        for i in range(70)
    ]
    bento.inspect.fail_next(1, status=500)
    with caplog.at_level(logging.WARNING, logger="bento_track"):
        assert EmailBackend(fail_silently=True, max_retries=0).send_messages(again) == 0
    assert "email not sent" in caplog.text
    assert [r["status"] for r in email_posts(bento)] == [500]


def test_failed_in_an_accepted_answer_is_reported_per_message(bento: Any) -> None:
    """Bento may accept a request and count some of its emails as `failed`
    without naming them (the emulator never does: this backend's answer
    is replaced, its handling is what is tested)."""

    class Answering(EmailBackend):
        def _post(self, emails: list[Any]) -> BatchResult:
            return BatchResult(results=len(emails) - 2, failed=2)

    messages = [
        mail.EmailMessage(f"n{i}", "b", AUTHOR, [f"u{i}@example.com"]) for i in range(5)
    ]
    assert Answering().send_messages(messages) == 3  # at most 2 of 5 lost
    assert {m.bento_status.recipients[m.to[0]] for m in messages} == {"unknown"}

    class Refusing(EmailBackend):
        def _post(self, emails: list[Any]) -> BatchResult:
            return BatchResult(results=0, failed=len(emails))

    refused = [mail.EmailMessage("r", "b", AUTHOR, ["r@example.com"])]
    with pytest.raises(Exception, match="Bento refused all 1 emails"):
        Refusing().send_messages(refused)
    assert refused[0].bento_status.status == {"failed"}


# -- the budget and the connection ------------------------------------------------------


def test_requests_spend_the_default_clients_budget(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    client = Client(**emulator.client_kwargs(), requests_per_minute=2, environ={})
    try:
        with (
            use_default_client(client),
            override_settings(BENTO_TRACK=dict(emulator.client_kwargs())),
        ):
            assert mail.send_mail("1", "b", AUTHOR, ["a@example.com"]) == 1
            with client.request_permit(1):  # the delivery thread's, say
                pass
            message = mail.EmailMessage("3", "b", AUTHOR, ["a@example.com"])
            with pytest.raises(TimeoutError, match="budget"):
                EmailBackend(budget_timeout=0.2).send_messages([message])
            assert message.bento_status.status == {"failed"}
            assert (
                EmailBackend(fail_silently=True, budget_timeout=0).send_messages(
                    [message]
                )
                == 0
            )
        assert client.stats().store.budget_used == 2
        assert len(email_posts(emulator)) == 1
    finally:
        client.shutdown(1)


def test_another_accounts_default_client_leaves_a_budget_of_its_own(
    bento: Any, caplog: pytest.LogCaptureFixture
) -> None:
    other = Client(
        site_uuid="other",
        publishable_key="pk",
        secret_key="sk",
        base_url="http://127.0.0.1:9/api/v1",
        requests_per_minute=1,
        environ={},
    )
    try:
        with (
            use_default_client(other),
            caplog.at_level(logging.WARNING, logger="bento_track"),
        ):
            for _ in range(2):
                assert mail.send_mail("S", "b", AUTHOR, ["a@example.com"]) == 1
        assert "spend a budget of their own" in caplog.text
        assert other.stats().store.budget_used == 0
    finally:
        other.shutdown(0)


def test_without_credentials_it_says_which(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    disabled = Client(disabled=True, environ={})
    with use_default_client(disabled), override_settings(BENTO_TRACK={}):
        with pytest.raises(ImproperlyConfigured, match="BENTO_SITE_UUID"):
            mail.send_mail("S", "b", AUTHOR, ["a@example.com"])
        with caplog.at_level(logging.WARNING, logger="bento_track"):
            assert (
                mail.send_mail("S", "b", AUTHOR, ["a@example.com"], fail_silently=True)
                == 0
            )
        assert "BENTO_SITE_UUID" in caplog.text
        message = mail.EmailMessage("S", "b", AUTHOR, ["a@example.com"])
        assert EmailBackend(fail_silently=True).send_messages([message]) == 0
        assert isinstance(message.bento_status, BentoStatus)
        assert message.bento_status.error is not None
    disabled.shutdown(0)


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ({"unsupported": "ignore"}, "unsupported"),
        ({"max_retries": 99}, "max_retries"),
        ({"nope": 1}, "unknown option"),
        ("drop", "must be a dict"),
    ],
)
def test_bad_options_are_improperly_configured(
    bento: Any, email: Any, expected: str
) -> None:
    with override_settings(BENTO_TRACK={**bento.client_kwargs(), "email": email}):
        with pytest.raises(ImproperlyConfigured, match=expected):
            mail.send_mail("S", "b", AUTHOR, ["a@example.com"])
        assert (
            mail.send_mail("S", "b", AUTHOR, ["a@example.com"], fail_silently=True) == 0
        )


def test_one_connection_for_several_sends(bento: Any) -> None:
    connection = mail.get_connection()
    assert isinstance(connection, EmailBackend)
    with connection:
        api = connection._api
        assert api is not None
        assert connection.open() is False  # already open
        connection.send_messages(
            [mail.EmailMessage("1", "b", AUTHOR, ["a@example.com"])]
        )
        connection.send_messages(
            [mail.EmailMessage("2", "b", AUTHOR, ["a@example.com"])]
        )
        assert connection._api is api
    assert connection._api is None
    connection.close()  # harmless again
    assert len(email_posts(bento)) == 2
