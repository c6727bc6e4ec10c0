"""`EMAIL_BACKEND = "bento_track.integrations.django.EmailBackend"`: Django's
mail (`send_mail`, `EmailMessage.send`, `mail_admins`, the password-reset
views) sent as Bento transactional emails through `/batch/emails`.

```python
EMAIL_BACKEND = "bento_track.integrations.django.EmailBackend"
DEFAULT_FROM_EMAIL = "hello@acme.com"       # an author of your Bento account
BENTO_TRACK = {
    # credentials as for events: here, or the BENTO_* variables
    "email": {                              # all optional
        "transactional": True,              # Bento's flag; per message: bento_transactional
        "unsupported": "error",             # or "drop": send without attachments, cc, ...
        "max_retries": 3,                   # of each request, on 429, 5xx and network errors
        "budget_timeout": 30,               # seconds to wait for the request budget
    },
}
```

Django's contract holds: `send_messages()` returns how many messages were
sent; with `fail_silently=True` no error escapes (each is logged as a warning
on the `bento_track` logger, and counted out of the return value);
`open()`/`close()` and `with get_connection() as connection:` keep one HTTP
connection for several sends.

How a message maps (one Bento email per `to` address, HTML, merge data) is
`email_message`'s docstring. Every message of a call is checked before any is
sent: with `fail_silently=False` one that cannot be sent (an attachment, a
malformed address) raises and nothing at all is sent; with
`fail_silently=True` it is skipped, and the rest are sent.

Requests carry up to 60 emails (Bento's limit); a message's emails travel in
one request when they fit. Each request spends one permit of the default
client's request budget (`Client.request_permit`): the budget the delivery
thread spends on events, so email and events together stay within the
account's limit (across processes with a SQLite or Redis store). 429s pause
both; 429, 5xx and network errors are retried up to `max_retries` times.
When the default client belongs to another account (or is disabled for want
of credentials), the backend spends a budget of its own in this process,
with the client options' `requests_per_minute` and `rate_window`.

After a send each message has `message.bento_status` (see `BentoStatus`):
the status of each recipient's email.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend

from ..._default import existing_client, get_client
from ..._internal import library_section, logger
from ..._transport.requests import MAX_EMAILS, retry_delay
from ...api import BentoAPI
from ...client import Client
from ...config import Config, check_number
from ...errors import APIError, ConfigurationError, InvalidEventError
from ...models import BatchResult, Email
from ..setup import configure_default_client
from .email_message import UNSUPPORTED_POLICIES, bento_emails
from .options import load_options

__all__ = ["BentoStatus", "EmailBackend", "EmailOptions", "budget_client"]

#: `BENTO_TRACK` keys that make the connection (the rest are the client's)
CONNECTION_OPTIONS = (
    "site_uuid",
    "publishable_key",
    "secret_key",
    "base_url",
    "allow_insecure_http",
    "connect_timeout",
    "read_timeout",
)

#: Bento queued the email
QUEUED = "queued"
#: not sent: its request failed, or an earlier one stopped the call
FAILED = "failed"
#: in a request Bento accepted while counting some of its emails as
#: `failed`, without saying which
UNKNOWN = "unknown"
#: not sent: the message cannot be sent as it is (see `BentoStatus.error`)
INVALID = "invalid"


@dataclass
class BentoStatus:
    """What became of one message (`message.bento_status`), in the manner of
    django-anymail's `anymail_status`.

    Attributes:
        recipients: each `to` address and the status of its email:
            "queued", "failed", "unknown" (Bento counted failures in its
            request without naming them) or "invalid" (nothing was sent).
        status: the set of those statuses (`{"queued"}` when all went well).
        error: why it was not (fully) sent, if it was not.
        dropped: what was left out under `unsupported="drop"`.
    """

    recipients: dict[str, str] = field(default_factory=dict)
    error: BaseException | None = None
    dropped: list[str] = field(default_factory=list)

    @property
    def status(self) -> set[str]:
        """The set of the recipients' statuses (`{"invalid"}` for a message
        refused before sending, even with no recipient)."""
        found = set(self.recipients.values())
        if not found and isinstance(self.error, InvalidEventError):
            return {INVALID}
        return found

    @property
    def sent(self) -> bool:
        """Every recipient's email was queued by Bento."""
        return bool(self.recipients) and self.status == {QUEUED}


@dataclass(frozen=True)
class EmailOptions:
    """`BENTO_TRACK["email"]`, overridden by the backend's keyword arguments
    (`get_connection(..., unsupported="drop")`).

    Attributes:
        transactional: Bento's `transactional` flag for every message
            without `bento_transactional` (default True: password resets and
            receipts reach people who unsubscribed from marketing).
        unsupported: "error" (default) refuses a message with attachments,
            cc, bcc, reply_to, custom headers, other alternatives or
            django-anymail features; "drop" sends it without them, with a
            warning.
        max_retries: retries of each request on 429, 5xx and network errors
            (0..20, default 3); each retry spends a permit too.
        budget_timeout: seconds each attempt may wait for a permit of the
            request budget (0..3600, default 30).
    """

    transactional: bool = True
    unsupported: str = "error"
    max_retries: int = 3
    budget_timeout: float = 30.0

    @classmethod
    def from_settings(cls, raw: object, overrides: Mapping[str, Any]) -> EmailOptions:
        """The options from `BENTO_TRACK["email"]` and `overrides`.

        Raises:
            ImproperlyConfigured: an unknown key or a bad value.
        """
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ImproperlyConfigured(
                "BENTO_TRACK['email'] must be a dict of email backend options, "
                f"not {type(raw).__name__}"
            )
        merged = {**raw, **overrides}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(str(k) for k in merged if k not in known)
        if unknown:
            raise ImproperlyConfigured(
                f"BENTO_TRACK['email']: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        options = cls(**merged)
        if not isinstance(options.transactional, bool):
            raise ImproperlyConfigured(
                "BENTO_TRACK['email']['transactional'] must be True or False"
            )
        if options.unsupported not in UNSUPPORTED_POLICIES:
            raise ImproperlyConfigured(
                "BENTO_TRACK['email']['unsupported'] must be one of "
                f"{', '.join(UNSUPPORTED_POLICIES)}, not {options.unsupported!r}"
            )
        try:
            check_number("max_retries", options.max_retries, 0, 20, integer=True)
            check_number(
                "budget_timeout", options.budget_timeout, 0, 3600, unit="seconds"
            )
        except ConfigurationError as exc:
            raise ImproperlyConfigured(f"BENTO_TRACK['email']: {exc}") from None
        return options


_own_budgets: dict[tuple[str, str, str], Client] = {}
_own_lock = threading.Lock()


def budget_client(config: Config, client_options: Mapping[str, Any]) -> Client:
    """The client whose request budget the backend spends for `config`'s
    account: the default client (configured from `client_options` first, as
    the Django app does, if nothing made it yet) when it sends for the same
    account; otherwise a budget of the backend's own in this process, one
    per account, with the options' `requests_per_minute` and `rate_window`.

    Raises:
        ConfigurationError: a client option is malformed.
    """
    if existing_client() is None:
        configure_default_client(client_options)
    client = get_client()
    own = client.config
    if own is not None and (own.base_url, own.site_uuid, own.publishable_key) == (
        config.base_url,
        config.site_uuid,
        config.publishable_key,
    ):
        return client
    key = (config.base_url, config.site_uuid, config.publishable_key)
    with _own_lock:
        budget = _own_budgets.get(key)
        if budget is None:
            limits = {
                k: client_options[k]
                for k in ("requests_per_minute", "rate_window")
                if k in client_options
            }
            budget = Client(disabled=True, environ={}, **limits)
            _own_budgets[key] = budget
            with library_section():
                logger.warning(
                    "bento_track EmailBackend: the default client does not send "
                    "for site %s, so email requests spend a budget of their own "
                    "in this process, apart from the events'",
                    config.site_uuid,
                )
    return budget


class EmailBackend(BaseEmailBackend):  # type: ignore[misc]
    """Django's email backend for Bento (see the module docstring).

    Args:
        fail_silently: turn every error into a logged warning and a lower
            return count.
        **options: `EmailOptions` fields, over `BENTO_TRACK["email"]`.
    """

    def __init__(self, fail_silently: bool = False, **options: Any) -> None:
        known = set(EmailOptions.__dataclass_fields__)
        super().__init__(
            fail_silently=fail_silently,
            **{k: v for k, v in options.items() if k not in known},
        )
        self._overrides = {k: v for k, v in options.items() if k in known}
        self._lock = threading.RLock()
        self._api: BentoAPI | None = None
        self._budget: Client | None = None
        self._options = EmailOptions()

    # -- the connection ------------------------------------------------------------

    def open(self) -> bool:
        """Read the settings and open the HTTP connection; True if this call
        opened it (False when already open, or when it failed silently).

        Raises:
            ImproperlyConfigured: missing credentials or a bad option (unless
                `fail_silently`, which logs it).
        """
        with self._lock:
            if self._api is not None:
                return False
            try:
                self._connect()
            except (ImproperlyConfigured, ConfigurationError) as exc:
                if not self.fail_silently:
                    if isinstance(exc, ImproperlyConfigured):
                        raise
                    raise ImproperlyConfigured(
                        f"bento_track EmailBackend: {exc}"
                    ) from None
                _warn("cannot send email: %s", exc)
                return False
            return True

    def _connect(self) -> None:
        django = load_options()
        raw = getattr(settings, "BENTO_TRACK", None) or {}
        self._options = EmailOptions.from_settings(raw.get("email"), self._overrides)
        connection = {k: v for k, v in django.client.items() if k in CONNECTION_OPTIONS}
        config = Config.resolve(**connection)
        self._budget = budget_client(config, django.client)
        self._api = BentoAPI(config=config, max_retries=0)

    def close(self) -> None:
        """Close the HTTP connection (harmless when not open)."""
        with self._lock:
            api, self._api = self._api, None
            if api is not None:
                api.close()

    # -- sending ---------------------------------------------------------------------

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        """Send the messages; the number sent (every recipient's email queued
        by Bento). Each message gets `bento_status`.

        Raises:
            InvalidEventError: a message cannot be sent as it is
                (`UnsupportedFeatureError` names what Bento cannot carry);
                nothing was sent.
            APIError: Bento refused a request or failed after the retries;
                the messages before it were sent (see `bento_status`).
            TimeoutError: no request was free in the budget in time.
            ImproperlyConfigured: missing credentials or a bad option.

            Never with `fail_silently=True`: each error is logged instead.
        """
        messages = list(email_messages or [])
        if not messages:
            return 0
        with self._lock:
            opened = self.open()
            try:
                if self._api is None:  # open() failed silently
                    for message in messages:
                        message.bento_status = BentoStatus(
                            error=ImproperlyConfigured("the backend is not configured")
                        )
                    return 0
                return self._send(messages)
            except Exception as exc:
                if not self.fail_silently:
                    raise
                _warn("sending email failed: %s", exc, traceback=True)
                return sum(1 for m in messages if _status(m).sent)
            finally:
                if opened:
                    self.close()

    def _send(self, messages: list[Any]) -> int:
        options = self._options
        default_from = str(getattr(settings, "DEFAULT_FROM_EMAIL", "") or "")
        # Check every message before sending any.
        batches: list[list[Email]] = []
        for index, message in enumerate(messages):
            try:
                mapped = bento_emails(
                    message,
                    default_from=default_from,
                    transactional=options.transactional,
                    unsupported=options.unsupported,
                )
            except InvalidEventError as exc:
                message.bento_status = BentoStatus(error=exc)
                if not self.fail_silently:
                    _not_sent(messages[:index] + messages[index + 1 :], exc)
                    raise
                _warn("email not sent: %s", exc)
                batches.append([])
                continue
            if mapped.dropped:
                _warn(
                    "email sent without what Bento cannot carry: %s",
                    ", ".join(mapped.dropped),
                )
            message.bento_status = BentoStatus(dropped=mapped.dropped)
            batches.append(mapped.emails)
        error, unconfirmed = self._post_all(messages, batches)
        sent = sum(1 for m in messages if m.bento_status.sent)
        # Of the messages with "unknown" emails, each email Bento counted as
        # failed spoils at most one: the others were surely sent.
        maybe = sum(1 for m in messages if _only_queued_or_unknown(m.bento_status))
        sent += max(0, maybe - unconfirmed)
        if error is not None:
            if not self.fail_silently:
                raise error
            _warn("email not sent: %s", error)
        return sent

    def _post_all(
        self, messages: list[Any], batches: list[list[Email]]
    ) -> tuple[BaseException | None, int]:
        """Send the emails in requests of at most 60, a message's emails
        together when they fit, and set each recipient's status. Stops at the
        first request that fails. Returns (its error or None, how many emails
        Bento counted as failed in requests it otherwise accepted)."""
        requests = _pack(batches)
        unconfirmed = 0
        for number, request in enumerate(requests):
            emails = [email for _, email in request]
            try:
                result = self._post(emails)
            except (APIError, TimeoutError) as exc:
                for owner, email in (pair for r in requests[number:] for pair in r):
                    status = messages[owner].bento_status
                    status.recipients[email.to] = FAILED
                    status.error = status.error or exc
                return exc, unconfirmed
            verdict = _verdict(result, len(emails))
            if verdict == UNKNOWN:
                unconfirmed += result.failed
                _warn(
                    "Bento refused %d of the %d emails of a request without saying "
                    "which: their messages' bento_status says 'unknown'",
                    result.failed,
                    len(emails),
                )
            for owner, email in request:
                messages[owner].bento_status.recipients[email.to] = verdict
            if verdict == FAILED:
                refused = APIError(
                    f"Bento refused all {len(emails)} emails of a request "
                    f"(failed: {result.failed})",
                    status=200,
                    method="POST",
                    path="/batch/emails",
                )
                for owner, _ in request:
                    messages[owner].bento_status.error = refused
                rest = requests[number + 1 :]
                for owner, email in (pair for r in rest for pair in r):
                    messages[owner].bento_status.recipients[email.to] = FAILED
                return refused, unconfirmed
        return None, unconfirmed

    def _post(self, emails: list[Email]) -> BatchResult:
        """One request, within the budget, retried on 429, 5xx and network
        errors; each attempt spends a permit."""
        assert self._api is not None and self._budget is not None
        options = self._options
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._budget.request_permit(options.budget_timeout):
                    return self._api.send_emails(emails)
            except APIError as error:
                delay = retry_delay(error, attempt, options.max_retries, random.random)
                if delay is None:
                    raise
                if error.status == 429:
                    # `request_permit` paused the budget for the Retry-After:
                    # the next permit waits for it.
                    continue
                time.sleep(delay)


def _pack(batches: list[list[Email]]) -> list[list[tuple[int, Email]]]:
    """Requests of at most `MAX_EMAILS` (message index, email) pairs; a
    message's emails stay in one request when they fit in one (a message
    with more recipients fills the request it starts in, then the next)."""
    requests: list[list[tuple[int, Email]]] = []
    current: list[tuple[int, Email]] = []
    for owner, emails in enumerate(batches):
        if not emails:
            continue
        fits_alone = len(emails) <= MAX_EMAILS
        if fits_alone and current and len(current) + len(emails) > MAX_EMAILS:
            requests.append(current)
            current = []
        for email in emails:
            if len(current) == MAX_EMAILS:
                requests.append(current)
                current = []
            current.append((owner, email))
    if current:
        requests.append(current)
    return requests


def _verdict(result: BatchResult, count: int) -> str:
    """The status of every email of a request Bento answered with `result`."""
    if result.failed <= 0:
        return QUEUED
    if result.failed >= count or result.results <= 0:
        return FAILED
    return UNKNOWN


def _only_queued_or_unknown(status: BentoStatus) -> bool:
    found = status.status
    return UNKNOWN in found and found <= {QUEUED, UNKNOWN}


def _status(message: Any) -> BentoStatus:
    status = getattr(message, "bento_status", None)
    return status if isinstance(status, BentoStatus) else BentoStatus()


def _not_sent(messages: list[Any], cause: BaseException) -> None:
    """The statuses of messages not sent because another could not be."""
    for message in messages:
        if not isinstance(getattr(message, "bento_status", None), BentoStatus):
            message.bento_status = BentoStatus()
        status = message.bento_status
        status.error = status.error or cause
        for raw in message.to:
            status.recipients[parseaddr(str(raw))[1] or str(raw)] = FAILED


def _warn(text: str, *args: Any, traceback: bool = False) -> None:
    with library_section():
        logger.warning("bento_track EmailBackend: " + text, *args, exc_info=traceback)
