"""What `BentoAPI` and `AsyncBentoAPI` share: their settings, the retry
delay, how a request is turned into httpx arguments, and the partial result
an error of a split operation carries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .._internal import logger
from .._transport import requests as R
from .._transport.http import headers, timeout
from ..config import Config, check_number
from ..errors import APIError, ConfigurationError
from ..models import BatchResult, CommandResult

__all__ = ["APIClientBase", "Result", "with_partial"]

#: what an operation split into several requests returns
Result = TypeVar("Result", BatchResult, CommandResult)


def _resolve(
    config: Config | None,
    site_uuid: str | None,
    publishable_key: str | None,
    secret_key: str | None,
    base_url: str | None,
    allow_insecure_http: bool | None,
    connect_timeout: float | None,
    read_timeout: float | None,
) -> Config:
    settings = (site_uuid, publishable_key, secret_key, base_url, allow_insecure_http)
    if config is not None:
        if any(v is not None for v in settings + (connect_timeout, read_timeout)):
            raise ConfigurationError(
                "pass either config=... or individual settings, not both",
                setting="config",
            )
        return config
    return Config.resolve(
        site_uuid=site_uuid,
        publishable_key=publishable_key,
        secret_key=secret_key,
        base_url=base_url,
        allow_insecure_http=allow_insecure_http,
        connect_timeout=5.0 if connect_timeout is None else connect_timeout,
        read_timeout=10.0 if read_timeout is None else read_timeout,
    )


def _check_retries(max_retries: object) -> int:
    retries: int = check_number("max_retries", max_retries, 0, 20, integer=True)
    return retries


class APIClientBase:
    """What both clients share: settings, the request URL parts, the repr."""

    config: Config
    max_retries: int

    def _setup(
        self,
        config: Config | None,
        site_uuid: str | None,
        publishable_key: str | None,
        secret_key: str | None,
        base_url: str | None,
        allow_insecure_http: bool | None,
        connect_timeout: float | None,
        read_timeout: float | None,
        max_retries: int,
        rand: Callable[[], float],
    ) -> dict[str, Any]:
        self.config = _resolve(
            config,
            site_uuid,
            publishable_key,
            secret_key,
            base_url,
            allow_insecure_http,
            connect_timeout,
            read_timeout,
        )
        self.max_retries = _check_retries(max_retries)
        self._rand = rand
        # httpx joins relative paths onto the base URL's path only when it ends
        # with "/"; Config strips it, so it is put back here.
        return {
            "base_url": self.config.base_url + "/",
            "headers": headers(self.config),
            "timeout": timeout(self.config),
            "params": {"site_uuid": self.config.site_uuid},
            "follow_redirects": False,
        }

    def _retries(self, retries: int | None) -> int:
        return self.max_retries if retries is None else _check_retries(retries)

    def _delay(self, error: APIError, attempt: int, retries: int) -> float | None:
        delay = R.retry_delay(error, attempt, retries, self._rand)
        if delay is not None:
            logger.debug(
                "retrying %s %s in %.2f s (attempt %d of %d): %s",
                error.method,
                error.path,
                delay,
                attempt,
                retries,
                error,
            )
        return delay

    def _build(self, request: R.Request) -> tuple[str, str, dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        if request.body is not None:
            kwargs["content"] = request.body
        if request.params:
            # httpx merges these with the client's `site_uuid` parameter.
            kwargs["params"] = dict(request.params)
        return request.method, request.path.lstrip("/"), kwargs

    def _path(self, path: str) -> str:
        """The full URL path, as `error_from_response` reports it."""
        return urlsplit(self.config.base_url).path + "/" + path

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(site_uuid={self.config.site_uuid!r}, "
            f"base_url={self.config.base_url!r})"
        )


def with_partial(error: APIError, partial: BatchResult | CommandResult) -> APIError:
    """`error`, carrying `partial`: what the requests before it achieved."""
    # Set on the instance: only errors from split operations carry it.
    error.partial = partial
    return error
