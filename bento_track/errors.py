"""
The one exception hierarchy of bento_track.

```
BentoError
├── ConfigurationError (ValueError)      a setting is missing or malformed
├── InvalidEventError (ValueError)       an event, subscriber or email fails validation
└── APIError                             Bento (or the emulator) answered with an error
    ├── BadRequestError                  400: the payload is wrong, do not retry
    ├── AuthenticationError              401: bad keys or missing site_uuid
    ├── ForbiddenError                   403: missing/generic User-Agent, blocked account
    ├── NotFoundError                    404: wrong path or method
    ├── UnprocessableError               422: valid shape, broken business rule
    ├── RateLimitedError                 429: slow down; carries retry_after
    ├── ServerError                      5xx: temporary, retried with backoff
    └── TransportError                   no HTTP answer at all
        ├── RequestTimeoutError (TimeoutError)
        └── NetworkError (ConnectionError)
```

Every class also refines the built-in a caller would naturally catch. Messages and
attributes never carry the secret key or the Basic auth header.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "BentoError",
    "ConfigurationError",
    "ForbiddenError",
    "InvalidEventError",
    "NetworkError",
    "NotFoundError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerError",
    "TransportError",
    "UnprocessableError",
]


class BentoError(Exception):
    """Base class of every error bento_track raises."""


class ConfigurationError(BentoError, ValueError):
    """A setting is missing or malformed; the message names the setting and variable."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class InvalidEventError(BentoError, ValueError):
    """Input that Bento would reject; `field` names the offending part (e.g. `fields.plan`)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class APIError(BentoError):
    """An error answer from the Bento API (or no answer at all, for `TransportError`).

    Attributes:
        status: the HTTP status, or None when no response arrived.
        body: the response body, truncated and with secrets redacted.
        retry_after: seconds the server asked us to wait (`Retry-After`), if any.
        method, path: the request that failed (path without query string).
    """

    #: whether retrying the same request later can succeed
    retryable: bool = False

    #: for a call split into several requests (subscribers, emails, commands,
    #: events): what the requests before the failed one delivered
    #: (a `BatchResult` or `CommandResult`); None otherwise
    partial: Any = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.method = method
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={str(self)!r})"


class BadRequestError(APIError):
    """400: missing required fields, invalid JSON, wrong field type."""


class AuthenticationError(APIError):
    """401: missing or wrong Basic auth, or missing `site_uuid`."""


class ForbiddenError(APIError):
    """403: missing or generic User-Agent, blocked request, account access."""


class NotFoundError(APIError):
    """404: wrong path or method."""


class UnprocessableError(APIError):
    """422: a valid shape that breaks a business rule (sender, email, tag...)."""


class RateLimitedError(APIError):
    """429: too many requests; `retry_after` says how long to pause, when known."""

    retryable = True


class ServerError(APIError):
    """5xx (and 408): a temporary problem on Bento's side."""

    retryable = True


class TransportError(APIError):
    """No HTTP answer: connection refused or dropped, DNS, TLS, timeout."""

    retryable = True


class RequestTimeoutError(TransportError, TimeoutError):
    """The connect or read timeout expired."""


class NetworkError(TransportError, ConnectionError):
    """The connection failed or was dropped before an answer arrived."""
