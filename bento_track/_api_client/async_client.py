"""`AsyncBentoAPI`: Bento's everyday API as coroutines (see `bento_track.api`)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpx

from .._transport import requests as R
from .._transport.http import error_from_exception
from ..config import Config
from ..errors import APIError
from ..events import Event
from ..models import (
    BatchResult,
    Command,
    CommandResult,
    Email,
    Field,
    Subscriber,
    Tag,
)
from .base import APIClientBase, Result, with_partial

__all__ = ["AsyncBentoAPI"]


class AsyncBentoAPI(APIClientBase):
    """The asyncio client: the same methods as `BentoAPI`, as coroutines.

    Takes the same arguments, except `transport` is an `httpx.AsyncBaseTransport`
    and `sleep` an async callable (default `asyncio.sleep`).
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
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
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
        self._http = httpx.AsyncClient(transport=transport, **options)

    async def _send(self, request: R.Request, retries: int | None = None) -> Any:
        limit = self._retries(retries)
        method, path, kwargs = self._build(request)
        attempt = 0
        while True:
            attempt += 1
            try:
                try:
                    response = await self._http.request(method, path, **kwargs)
                except httpx.HTTPError as exc:
                    raise error_from_exception(
                        exc, method, self._path(path), self.config
                    ) from None
                return R.decode(response, self.config)
            except APIError as error:
                delay = self._delay(error, attempt, limit)
                if delay is None:
                    raise
            await self._sleep(delay)

    async def _send_all(
        self,
        requests: list[R.Request],
        parse: Callable[[Any], Result],
        empty: Result,
    ) -> Result:
        done = empty
        for request in requests:
            try:
                done = done + parse(await self._send(request))
            except APIError as error:
                raise with_partial(error, done) from None
        return done

    async def batch_events(
        self, events: Iterable[Event | Mapping[str, Any]]
    ) -> BatchResult:
        """Async `BentoAPI.batch_events`."""
        return await self._send_all(
            R.events(events), R.parse_batch, BatchResult(0, 0, 0)
        )

    async def post_events(
        self, body: bytes, *, retries: int | None = None
    ) -> BatchResult:
        """Async `BentoAPI.post_events`."""
        return R.parse_batch(await self._send(R.events_body(body), retries))

    async def import_subscribers(self, subscribers: Iterable[Any]) -> BatchResult:
        """Async `BentoAPI.import_subscribers`."""
        return await self._send_all(
            R.subscribers(subscribers), R.parse_batch, BatchResult(0, 0, 0)
        )

    async def send_emails(
        self, emails: Iterable[Email | Mapping[str, Any]]
    ) -> BatchResult:
        """Async `BentoAPI.send_emails`."""
        return await self._send_all(
            R.emails(emails), R.parse_batch, BatchResult(0, 0, 0)
        )

    async def run_commands(
        self, commands: Iterable[Command | Mapping[str, Any]]
    ) -> CommandResult:
        """Async `BentoAPI.run_commands`."""
        return await self._send_all(
            R.commands(commands), R.parse_commands, CommandResult(0, 0, 0)
        )

    async def get_tags(self) -> list[Tag]:
        """Async `BentoAPI.get_tags`."""
        return R.parse_tags(await self._send(R.get_tags()))

    async def create_tag(self, name: str) -> Tag:
        """Async `BentoAPI.create_tag`."""
        return R.parse_created_tag(await self._send(R.create_tag(name)), name)

    async def get_fields(self) -> list[Field]:
        """Async `BentoAPI.get_fields`."""
        return R.parse_fields(await self._send(R.get_fields()))

    async def create_field(self, key: str) -> Field:
        """Async `BentoAPI.create_field`."""
        return R.parse_created_field(await self._send(R.create_field(key)), key)

    async def get_subscriber(
        self, email: str | None = None, *, uuid: str | None = None
    ) -> Subscriber | None:
        """Async `BentoAPI.get_subscriber`."""
        return R.parse_subscriber(await self._send(R.get_subscriber(email, uuid)))

    async def create_subscriber(self, email: str) -> Subscriber:
        """Async `BentoAPI.create_subscriber`."""
        doc = await self._send(R.create_subscriber(email))
        return R.parse_subscriber(doc) or Subscriber(id="", uuid="", email=email)

    async def add_tag(self, email: str, tag: str) -> CommandResult:
        """Async `BentoAPI.add_tag`."""
        return await self.run_commands([Command.add_tag(email, tag)])

    async def remove_tag(self, email: str, tag: str) -> CommandResult:
        """Async `BentoAPI.remove_tag`."""
        return await self.run_commands([Command.remove_tag(email, tag)])

    async def add_field(self, email: str, key: str, value: Any) -> CommandResult:
        """Async `BentoAPI.add_field`."""
        return await self.run_commands([Command.add_field(email, key, value)])

    async def remove_field(self, email: str, key: str) -> CommandResult:
        """Async `BentoAPI.remove_field`."""
        return await self.run_commands([Command.remove_field(email, key)])

    async def subscribe(self, email: str) -> CommandResult:
        """Async `BentoAPI.subscribe`."""
        return await self.run_commands([Command.subscribe(email)])

    async def unsubscribe(self, email: str) -> CommandResult:
        """Async `BentoAPI.unsubscribe`."""
        return await self.run_commands([Command.unsubscribe(email)])

    async def change_email(self, old: str, new: str) -> CommandResult:
        """Async `BentoAPI.change_email`."""
        return await self.run_commands([Command.change_email(old, new)])

    async def validate_email(
        self,
        email: str,
        *,
        name: str | None = None,
        user_agent: str | None = None,
        ip: str | None = None,
    ) -> bool:
        """Async `BentoAPI.validate_email`."""
        return R.parse_valid(
            await self._send(R.validation(email, name, user_agent, ip))
        )

    async def aclose(self) -> None:
        """Async `BentoAPI.close` (this client's name for it, as in httpx)."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncBentoAPI:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
