"""HTTP details shared by the API clients and the delivery worker: headers,
the User-Agent, error mapping, `Retry-After` parsing and jittered backoff."""

from __future__ import annotations

import email.utils
import platform
import random
import time
from collections.abc import Callable, Mapping

import httpx

from .._version import __version__
from ..config import Config
from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ForbiddenError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    UnprocessableError,
)

#: Bento's edge blocks missing or generic user agents (`python-httpx/...`).
USER_AGENT = (
    f"bento-track/{__version__} (Python {platform.python_version()}; "
    f"httpx {httpx.__version__})"
)

MAX_ERROR_BODY = 500
RETRY_AFTER_MIN = 1.0
RETRY_AFTER_MAX = 120.0

_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    408: ServerError,
    422: UnprocessableError,
    429: RateLimitedError,
}


def headers(config: Config) -> dict[str, str]:
    """Headers for every request: auth, a real User-Agent, JSON both ways."""
    return {
        "Authorization": config.authorization,
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
        "Content-Type": "application/json",
    }


def timeout(config: Config) -> httpx.Timeout:
    """The `httpx.Timeout` for `config`: `connect_timeout` to connect and to
    wait for a pooled connection, `read_timeout` to read and to write."""
    return httpx.Timeout(
        connect=config.connect_timeout,
        read=config.read_timeout,
        write=config.read_timeout,
        pool=config.connect_timeout,
    )


def parse_retry_after(
    value: str | None, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = float(when.timestamp() - now())
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def clamp_retry_after(seconds: float | None) -> float | None:
    """A server-requested pause, clamped so a hostile header cannot park us."""
    if seconds is None:
        return None
    return min(RETRY_AFTER_MAX, max(RETRY_AFTER_MIN, seconds))


def backoff_delay(
    attempt: int,
    *,
    base: float = 0.5,
    cap: float = 30.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Jittered exponential backoff for retry number `attempt` (1-based):
    uniform in [half, full] of min(cap, base * 2**(attempt-1))."""
    full: float = min(cap, base * 2.0 ** max(0, attempt - 1))
    return full * (0.5 + rand() / 2)


def redacted_body(text: str, config: Config | None) -> str:
    """A response body fit for an error message: `config`'s secrets redacted,
    cut to `MAX_ERROR_BODY` characters (marked "...(truncated)")."""
    if config is not None:
        text = config.redact(text)
    if len(text) > MAX_ERROR_BODY:
        text = text[:MAX_ERROR_BODY] + "...(truncated)"
    return text


def error_from_response(
    response: httpx.Response, config: Config | None = None
) -> APIError:
    """The typed error for a non-2xx response."""
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    try:
        text = response.text
    except Exception:  # undecodable body
        text = ""
    body = redacted_body(text, config)
    request = response._request  # None for a Response built by hand
    method = request.method if request is not None else ""
    path = request.url.path if request is not None else ""
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    # The summary is read from the raw JSON, so it is redacted on its own.
    detail = redacted_body(_summary(response, body), config)
    message = f"Bento answered {status} to {method} {path}".strip()
    if detail:
        message += f": {detail}"
    return cls(
        message,
        status=status,
        body=body,
        retry_after=retry_after,
        method=method,
        path=path,
    )


def _summary(response: httpx.Response, body: str) -> str:
    """A short reason from Bento's error shapes: {"error": ...} or {"errors": [...]}."""
    try:
        doc = response.json()
    except Exception:
        return body[:200].strip()
    if isinstance(doc, Mapping):
        if isinstance(doc.get("error"), str):
            return str(doc["error"])
        errors = doc.get("errors")
        if isinstance(errors, list):
            parts = []
            for item in errors[:5]:
                if isinstance(item, Mapping):
                    field = item.get("field")
                    msg = item.get("message", "")
                    parts.append(f"{field} {msg}".strip() if field else str(msg))
                else:
                    parts.append(str(item))
            return "; ".join(parts)
    return body[:200].strip()


def error_from_exception(
    exc: httpx.HTTPError, method: str, path: str, config: Config | None = None
) -> TransportError:
    """The typed error for a request that got no HTTP answer."""
    reason = redacted_body(f"{type(exc).__name__}: {exc}", config)
    cls: type[TransportError] = (
        RequestTimeoutError if isinstance(exc, httpx.TimeoutException) else NetworkError
    )
    return cls(f"{method} {path} failed: {reason}", method=method, path=path)
