"""Bento's everyday API, one call per request: `BentoAPI` (sync) and
`AsyncBentoAPI` (async).

Use these for work a person or a script waits on: importing subscribers,
sending transactional email, reading tags and fields, subscriber commands.
For events from a web app, prefer `bento_track.Client`, which batches in the
background and never blocks a request.

    with BentoAPI() as api:                        # settings from BENTO_* variables
        api.import_subscribers([{"email": "a@example.com", "first_name": "Ann"}])
        api.send_emails([Email(to=..., from_=..., subject=..., html_body=...)])

Each API object keeps one HTTP client (keep-alive); close it, or use `with`.

Errors are the typed `bento_track.errors.APIError` subclasses. Rate limits
(429), 408, 5xx, timeouts and dropped connections are retried up to
`max_retries` times, waiting at least `Retry-After` (clamped to 1..120 s) and
otherwise a jittered exponential backoff; 400/401/403/404/422 are never retried.

Operations that split their input into several requests (`batch_events`,
`import_subscribers`, `send_emails`, `run_commands`) validate every record
before sending anything. If request k fails, the error raised carries a
`partial` attribute: the `BatchResult` (`CommandResult` for `run_commands`) of
requests 0..k-1, which Bento did accept, so a caller can resume after them:

    try:
        api.import_subscribers(rows)
    except APIError as exc:
        done = exc.partial.results  # rows before the failed request were accepted
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from ._api_client.async_client import AsyncBentoAPI
from ._api_client.base import APIClientBase, Result, with_partial
from ._transport import requests as R
from ._transport.http import error_from_exception
from .config import Config
from .errors import APIError
from .events import Event
from .models import (
    BatchResult,
    Command,
    CommandResult,
    Email,
    Field,
    Subscriber,
    Tag,
)

__all__ = ["AsyncBentoAPI", "BentoAPI"]


class BentoAPI(APIClientBase):
    """The synchronous client: each method sends its request(s) and returns.

    Args:
        site_uuid, publishable_key, secret_key, base_url, allow_insecure_http:
            settings; each falls back to its `BENTO_*` environment variable.
        config: a ready `Config` instead of the individual settings.
        connect_timeout, read_timeout: seconds (defaults 5 and 10).
        max_retries: retries of 429/408/5xx/transport failures (0..20).
        transport: an httpx transport (tests, proxies).
        sleep, rand: injected for tests (the wait between retries, and jitter).

    Raises:
        ConfigurationError: a setting is missing or malformed.
    """

    def __init__(
        self,
        *,
        site_uuid: str | None = None,
        publishable_key: str | None = None,
        secret_key: str | None = None,
        base_url: str | None = None,
        config: Config | None = None,
        allow_insecure_http: bool | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], object] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        options = self._setup(
            config,
            site_uuid,
            publishable_key,
            secret_key,
            base_url,
            allow_insecure_http,
            connect_timeout,
            read_timeout,
            max_retries,
            rand,
        )
        self._sleep = sleep
        self._http = httpx.Client(transport=transport, **options)

    # -- plumbing ------------------------------------------------------------

    def _send(self, request: R.Request, retries: int | None = None) -> Any:
        """One request with retries; the decoded JSON, or the typed error."""
        limit = self._retries(retries)
        method, path, kwargs = self._build(request)
        attempt = 0
        while True:
            attempt += 1
            try:
                try:
                    response = self._http.request(method, path, **kwargs)
                except httpx.HTTPError as exc:
                    raise error_from_exception(
                        exc, method, self._path(path), self.config
                    ) from None
                return R.decode(response, self.config)
            except APIError as error:
                delay = self._delay(error, attempt, limit)
                if delay is None:
                    raise
            self._sleep(delay)

    def _send_all(
        self,
        requests: list[R.Request],
        parse: Callable[[Any], Result],
        empty: Result,
    ) -> Result:
        done = empty
        for request in requests:
            try:
                done = done + parse(self._send(request))
            except APIError as error:
                raise with_partial(error, done) from None
        return done

    # -- batch endpoints -----------------------------------------------------

    def batch_events(self, events: Iterable[Event | Mapping[str, Any]]) -> BatchResult:
        """Send events (`Event` or dicts) to `POST /batch/events`, at most 1,000
        per request; the `BatchResult` adds up every request's counts.

        Raises:
            InvalidEventError: an event is invalid (nothing was sent).
            APIError: a request failed; `.partial` tells what earlier ones delivered.
        """
        return self._send_all(R.events(events), R.parse_batch, BatchResult(0, 0, 0))

    def post_events(self, body: bytes, *, retries: int | None = None) -> BatchResult:
        """Send an already encoded `{"events": [...]}` body to
        `POST /batch/events` as is, in one request (for tools that build bodies
        themselves): no validation and no splitting, so the body must respect
        Bento's 1,000 events per request. `retries` overrides `max_retries`.

        Raises:
            InvalidEventError: `body` is not non-empty bytes (nothing was sent).
            APIError: the request failed.
        """
        return R.parse_batch(self._send(R.events_body(body), retries))

    def import_subscribers(self, subscribers: Iterable[Any]) -> BatchResult:
        """Create or update subscribers (no automations) with
        `POST /batch/subscribers`, at most 1,000 per request.

        Each row is a dict with `email` and flat values (`first_name`, `tags`
        as "a,b" or a list, `remove_tags`, custom fields), or an object with
        `email` and `fields` such as a `Subscriber`.

        Raises:
            InvalidEventError: a row is invalid (nothing was sent).
            APIError: a request failed; `.partial` tells what earlier ones delivered.
        """
        return self._send_all(
            R.subscribers(subscribers), R.parse_batch, BatchResult(0, 0, 0)
        )

    def send_emails(self, emails: Iterable[Email | Mapping[str, Any]]) -> BatchResult:
        """Queue emails (`Email` or dicts) with `POST /batch/emails`, at most 60
        per request; the `BatchResult` counts emails Bento queued.

        Raises:
            InvalidEventError: an email is invalid (nothing was sent).
            APIError: a request failed (`UnprocessableError` for a sender that is
                not an author); `.partial` tells what earlier ones queued.
        """
        return self._send_all(R.emails(emails), R.parse_batch, BatchResult(0, 0, 0))

    def run_commands(
        self, commands: Iterable[Command | Mapping[str, Any]]
    ) -> CommandResult:
        """Queue subscriber commands (`Command` or dicts) with
        `POST /fetch/commands`, at most 100 per request. Bento applies them
        asynchronously: the `CommandResult` counts commands queued.

        Raises:
            InvalidEventError: a command is invalid (nothing was sent).
            APIError: a request failed; `.partial` tells what earlier ones queued.
        """
        return self._send_all(
            R.commands(commands), R.parse_commands, CommandResult(0, 0, 0)
        )

    # -- tags and fields -----------------------------------------------------

    def get_tags(self) -> list[Tag]:
        """Every tag of the site (`GET /fetch/tags`); an empty list if none.

        Raises:
            APIError: the request failed.
        """
        return R.parse_tags(self._send(R.get_tags()))

    def create_tag(self, name: str) -> Tag:
        """Create the tag `name` (`POST /fetch/tags`) and return it (a `Tag`
        with an empty `id` if Bento's answer holds no tag).

        Raises:
            InvalidEventError: `name` is empty (nothing was sent).
            APIError: the request failed.
        """
        return R.parse_created_tag(self._send(R.create_tag(name)), name)

    def get_fields(self) -> list[Field]:
        """Every custom field of the site (`GET /fetch/fields`); an empty list
        if none.

        Raises:
            APIError: the request failed.
        """
        return R.parse_fields(self._send(R.get_fields()))

    def create_field(self, key: str) -> Field:
        """Create the custom field `key` (`POST /fetch/fields`) and return it
        (a `Field` with an empty `id` if Bento's answer holds no field).

        Raises:
            InvalidEventError: `key` is empty (nothing was sent).
            APIError: the request failed.
        """
        return R.parse_created_field(self._send(R.create_field(key)), key)

    # -- subscribers ---------------------------------------------------------

    def get_subscriber(
        self, email: str | None = None, *, uuid: str | None = None
    ) -> Subscriber | None:
        """The subscriber with this email (or uuid), or None if there is none
        (`GET /fetch/subscribers`).

        Raises:
            InvalidEventError: not exactly one of `email` and `uuid`, or a
                malformed one (nothing was sent).
            APIError: the request failed.
        """
        return R.parse_subscriber(self._send(R.get_subscriber(email, uuid)))

    def create_subscriber(self, email: str) -> Subscriber:
        """Create a subscriber (`POST /fetch/subscribers`) and return it; when
        Bento's answer carries no record, a `Subscriber` with only the email.

        Raises:
            InvalidEventError: `email` is malformed (nothing was sent).
            APIError: the request failed.
        """
        doc = self._send(R.create_subscriber(email))
        return R.parse_subscriber(doc) or Subscriber(id="", uuid="", email=email)

    def add_tag(self, email: str, tag: str) -> CommandResult:
        """Queue adding `tag` to the subscriber (created if missing; no
        automations): one `add_tag` command, see `run_commands`.

        Raises:
            InvalidEventError: an argument is invalid (nothing was sent).
            APIError: the request failed.
        """
        return self.run_commands([Command.add_tag(email, tag)])

    def remove_tag(self, email: str, tag: str) -> CommandResult:
        """Queue removing `tag` from the subscriber: one `remove_tag` command,
        see `run_commands`.

        Raises:
            InvalidEventError: an argument is invalid (nothing was sent).
            APIError: the request failed.
        """
        return self.run_commands([Command.remove_tag(email, tag)])

    def add_field(self, email: str, key: str, value: Any) -> CommandResult:
        """Queue setting custom field `key` to the flat `value`: one `add_field`
        command, see `run_commands`.

        Raises:
            InvalidEventError: an argument is invalid (nothing was sent).
            APIError: the request failed.
        """
        return self.run_commands([Command.add_field(email, key, value)])

    def remove_field(self, email: str, key: str) -> CommandResult:
        """Queue removing custom field `key` from the subscriber: one
        `remove_field` command, see `run_commands`.

        Raises:
            InvalidEventError: an argument is invalid (nothing was sent).
            APIError: the request failed.
        """
        return self.run_commands([Command.remove_field(email, key)])

    def subscribe(self, email: str) -> CommandResult:
        """Queue (re)subscribing the address: one `subscribe` command, see
        `run_commands`.

        Raises:
            InvalidEventError: an argument is invalid (nothing was sent).
            APIError: the request failed.
        """
        return self.run_commands([Command.subscribe(email)])

    def unsubscribe(self, email: str) -> CommandResult:
        """Queue unsubscribing the address: one `unsubscribe` command, see
        `run_commands`.

        Raises:
            InvalidEventError: an argument is invalid (nothing was sent).
            APIError: the request failed.
        """
        return self.run_commands([Command.unsubscribe(email)])

    def change_email(self, old: str, new: str) -> CommandResult:
        """Queue moving subscriber `old` to the address `new`: one
        `change_email` command, see `run_commands`.

        Raises:
            InvalidEventError: an argument is invalid (nothing was sent).
            APIError: the request failed.
        """
        return self.run_commands([Command.change_email(old, new)])

    # -- experimental --------------------------------------------------------

    def validate_email(
        self,
        email: str,
        *,
        name: str | None = None,
        user_agent: str | None = None,
        ip: str | None = None,
    ) -> bool:
        """Bento's opinion of an address (`POST /experimental/validation`):
        True only when Bento answers `"valid": true`. `name`, `user_agent` and
        `ip` are optional hints sent along.

        Raises:
            InvalidEventError: `email` is empty (nothing was sent).
            APIError: the request failed.
        """
        return R.parse_valid(self._send(R.validation(email, name, user_agent, ip)))

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP client and its keep-alive connections (calling it
        again is harmless); requests after it raise `RuntimeError`."""
        self._http.close()

    def __enter__(self) -> BentoAPI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
