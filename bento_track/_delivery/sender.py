"""Posting one pre-encoded batch body to `/batch/events` and classifying the
answer for the worker's retry policy. One `httpx.Client` per sender, created
lazily in the thread that sends (keep-alive across batches); every module that
first send needs is imported with this one, and its SSL context is made
beforehand (see below), so that a fork can come at any moment."""

from __future__ import annotations

# What the delivery thread's first send would otherwise import lazily, here
# in the thread that imports bento_track: httpx imports its transport
# (httpcore, with h11, anyio and whatever else it pulls in) when the first
# `httpx.Client` is made and certifi when it makes an SSL context, and the
# socket module loads the `idna` codec to encode the first host name. A fork
# (gunicorn --preload) while the delivery thread is half-way through one of
# those imports leaves the child a half-initialized module it can never send
# with ("partially initialized module 'httpcore' has no attribute
# 'ConnectionPool'"). tests/delivery/test_fork.py fails if a send imports
# anything `import bento_track` has not.
import encodings.idna  # noqa: F401
import enum
import json
import os
import ssl
from dataclasses import dataclass

import certifi
import httpcore  # noqa: F401
import httpx

from .._transport import http as _http
from ..config import Config
from ..errors import APIError

__all__ = ["Outcome", "Sender", "Verdict"]

_PATH = "/batch/events"

# No delivery thread makes an SSL context either. httpx makes one for every
# client, plain http included, unless given one; while OpenSSL builds it, it
# holds process-wide locks, and a fork in that moment leaves the child's
# OpenSSL locked for good: the child's first send hangs (benchmarks/
# fork_stress.py found it). So plain http gets this context, made at import
# and never used; https gets `_verifying_context()`, made by the thread that
# makes the first https Sender and inherited by forked children.
_UNUSED = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
_UNUSED.check_hostname = False
_UNUSED.verify_mode = ssl.CERT_NONE
_verifying: ssl.SSLContext | None = None


def _verifying_context() -> ssl.SSLContext:
    """The process's context for https, made on first use (loading the CA
    bundle costs ~35 ms): what httpx's `verify=True` makes, the bundle named
    by `SSL_CERT_FILE` or `SSL_CERT_DIR`, else certifi's."""
    global _verifying
    if _verifying is None:
        if os.environ.get("SSL_CERT_FILE"):
            context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        elif os.environ.get("SSL_CERT_DIR"):
            context = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
        else:
            context = ssl.create_default_context(cafile=certifi.where())
        _verifying = context
    return _verifying


class Verdict(enum.Enum):
    """What the worker should do with the batch it just tried."""

    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # 5xx, 408, network error, timeout: back off, try again
    RATE_LIMITED = "rate_limited"  # 429: pause all sending, try again
    REJECTED = "rejected"  # 400, 413, 422 and other 4xx: bisect / report
    STOP = "stop"  # 401, 403, 404: misconfigured; stop sending, keep events


@dataclass(frozen=True)
class Outcome:
    """The classified answer to one request."""

    verdict: Verdict
    status: int | None = None
    accepted: int = 0
    failed: int = 0
    error: APIError | None = None


def classify_status(status: int) -> Verdict:
    """The worker's verdict on an HTTP status: 2xx delivered, 429 rate
    limited, 5xx and 408 retry, 401/403/404 stop, any other rejected."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 429:
        return Verdict.RATE_LIMITED
    if status >= 500 or status == 408:
        return Verdict.RETRY
    if status in (401, 403, 404):
        return Verdict.STOP
    return Verdict.REJECTED


def _counts(response: httpx.Response, sent: int) -> tuple[int, int]:
    """Bento's `results` (or older `result`) and `failed` from a 2xx body."""
    try:
        doc = json.loads(response.content or b"{}")
    except ValueError:
        return sent, 0
    if not isinstance(doc, dict):
        return sent, 0
    accepted = doc.get("results", doc.get("result", sent))
    failed = doc.get("failed", 0)
    if not isinstance(accepted, int) or isinstance(accepted, bool):
        accepted = sent
    if not isinstance(failed, int) or isinstance(failed, bool):
        failed = 0
    return accepted, failed


class Sender:
    """Posts batch bodies for one `Config`."""

    def __init__(
        self, config: Config, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.config = config
        #: the app's transport (`Client(transport=...)`), or httpx's own
        self._transport = transport
        # Built once: `Client.post` would parse, merge and re-encode the URL,
        # params and headers on every batch (about a third of a request's CPU).
        self._url = httpx.URL(
            f"{config.base_url}{_PATH}", params={"site_uuid": config.site_uuid}
        )
        #: the URLs of subscriber updates' endpoints, made on first use
        self._urls: dict[str, httpx.URL] = {}
        self._headers = _http.headers(config)
        self._timeout = _http.timeout(config)
        self._timeouts = {"timeout": self._timeout.as_dict()}
        # Here, not in the delivery thread (see `_UNUSED`). Plain http (the
        # emulator on loopback) never uses TLS, so it loads no CA bundle.
        self._tls = _verifying_context() if self._url.scheme == "https" else _UNUSED
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self._timeout, verify=self._tls, transport=self._transport
            )
        return self._client

    def post(
        self,
        body: bytes,
        count: int,
        *,
        timeout: float | None = None,
        path: str = _PATH,
    ) -> Outcome:
        """Send one body holding `count` items; never raises for HTTP trouble.

        Args:
            timeout: a cap on connect/read/write time (the remaining flush or
                shutdown deadline), below the configured timeouts.
            path: the batch's endpoint (`/batch/events` unless a batch of
                subscriber updates).
        """
        extensions = self._timeouts
        if timeout is not None:
            cap = max(
                0.05,
                min(timeout, self.config.read_timeout, self.config.connect_timeout),
            )
            extensions = {"timeout": httpx.Timeout(cap).as_dict()}
        request = httpx.Request(
            "POST",
            self._url if path == _PATH else self._other_url(path),
            headers=self._headers,
            content=body,
            extensions=extensions,
        )
        try:
            response = self._http().send(request)
        except httpx.HTTPError as exc:
            return Outcome(
                Verdict.RETRY,
                error=_http.error_from_exception(exc, "POST", path, self.config),
            )
        verdict = classify_status(response.status_code)
        if verdict is Verdict.DELIVERED:
            accepted, failed = _counts(response, count)
            return Outcome(verdict, response.status_code, accepted, failed)
        return Outcome(
            verdict,
            response.status_code,
            error=_http.error_from_response(response, self.config),
        )

    def _other_url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = self._url.copy_with(
                raw_path=self._url.raw_path.replace(_PATH.encode(), path.encode(), 1)
            )
        return url

    def close(self) -> None:
        """Close the connection pool, if one was opened; the next `post`
        opens a new one."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def forget_after_fork(self) -> httpx.Client | None:
        """In a forked child: drop the parent's connection pool without closing
        its sockets (they belong to the parent); return it so the caller can
        keep a reference and the garbage collector never touches it."""
        client, self._client = self._client, None
        return client
