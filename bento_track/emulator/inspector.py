"""`Inspector`: the inspection API from Python, over loopback HTTP."""

from __future__ import annotations

import threading
from typing import Any

import httpx

__all__ = ["Inspector"]


class Inspector:
    """Reads and steers a running emulator through `/_emulator/...`.

    Args:
        url: the emulator's root URL (`http://127.0.0.1:PORT`).
        timeout: seconds per call.
        transport: optional httpx transport (e.g. `httpx.ASGITransport` to
            inspect an in-process app).
    """

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._transport = transport
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"Inspector({self.url!r})"

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                # trust_env=False: a proxy from the environment must never
                # intercept loopback calls.
                self._http = httpx.Client(
                    base_url=self.url + "/_emulator",
                    timeout=self._timeout,
                    trust_env=False,
                    # The emulator serves plain http: skip loading CA certs.
                    verify=False,
                    transport=self._transport,
                    headers={"User-Agent": "bento-track-emulator-inspector"},
                )
            return self._http

    def close(self) -> None:
        """Close the HTTP connection (a later call opens a new one)."""
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client().request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    # -- what was received --------------------------------------------------------

    def events(self, meta: bool = False) -> list[dict[str, Any]]:
        """Accepted events as sent; with `meta`, wrapped with request id and time."""
        return self._list("events", meta)

    def subscribers(self) -> list[dict[str, Any]]:
        """Every subscriber the emulator holds."""
        return self._list("subscribers")

    def emails(self, meta: bool = False) -> list[dict[str, Any]]:
        """Every transactional email received (with `meta`: ids and times)."""
        return self._list("emails", meta)

    def commands(self, meta: bool = False) -> list[dict[str, Any]]:
        """Every subscriber command received (with `meta`: ids and times)."""
        return self._list("commands", meta)

    def tags(self) -> list[dict[str, Any]]:
        """Every tag of the account."""
        return self._list("tags")

    def fields(self) -> list[dict[str, Any]]:
        """Every custom field of the account."""
        return self._list("fields")

    def _list(self, kind: str, meta: bool = False) -> list[dict[str, Any]]:
        params = {"meta": "1"} if meta else None
        result: list[dict[str, Any]] = self._call("GET", f"/{kind}", params=params)
        return result

    def requests(self) -> list[dict[str, Any]]:
        """Every API request in arrival order: method, path, status, time, count.
        Status 0 means the connection was dropped (fault injection)."""
        result: list[dict[str, Any]] = self._call("GET", "/requests")
        return result

    def request_counts(self) -> dict[str, int]:
        """Requests by status: `{"200": 3, "429": 1}`."""
        result: dict[str, int] = self._call("GET", "/requests/counts")
        return result

    def summary(self) -> dict[str, Any]:
        """Counts per kind and the emulator's settings (no secret)."""
        result: dict[str, Any] = self._call("GET", "/")
        return result

    def clear(self, kind: str | None = None) -> None:
        """Delete the records of `kind` ("events", ..., "requests"), or all data."""
        if kind is None:
            self._call("DELETE", "/data")
        elif kind == "requests":
            self._call("DELETE", "/requests")
        else:
            self._call("DELETE", f"/{kind}")

    def reset(self) -> None:
        """Clear data, faults, the request log and the rate-limit window."""
        self._call("POST", "/reset")

    # -- faults ---------------------------------------------------------------------

    def _fault(self, **rule: Any) -> None:
        self._call("POST", "/faults", json=rule)

    def fail_next(
        self,
        n: int,
        status: int = 500,
        retry_after: int | None = None,
        body: Any = None,
    ) -> None:
        """The next `n` API requests get `status` (with `Retry-After`, `body`)."""
        self._fault(kind="fail", n=n, status=status, retry_after=retry_after, body=body)

    def slow_next(self, n: int, seconds: float) -> None:
        """The next `n` API requests are answered `seconds` late."""
        self._fault(kind="slow", n=n, seconds=seconds)

    def drop_next(self, n: int) -> None:
        """The next `n` API requests get their connection closed, no answer."""
        self._fault(kind="drop", n=n)

    def rate_limit_storm(self, n: int, retry_after: int = 2) -> None:
        """The next `n` API requests get 429 with `Retry-After`."""
        self._fault(kind="storm", n=n, retry_after=retry_after)

    def reject_events(self, email: str | None = None, type: str | None = None) -> None:
        """Until reset: a `/batch/events` body holding an event with this email
        and/or type gets 400 with Bento's errors shape; nothing is stored."""
        self._fault(kind="reject", email=email, type=type)

    def faults(self) -> dict[str, Any]:
        """The faults waiting to be injected."""
        result: dict[str, Any] = self._call("GET", "/faults")
        return result

    def clear_faults(self) -> None:
        """Forget every fault waiting to be injected."""
        self._call("DELETE", "/faults")

    # -- rate limit -------------------------------------------------------------------

    def set_rate_limit(self, requests: int, window_seconds: float) -> None:
        """At most `requests` accepted in any `window_seconds` from now on."""
        self._call(
            "PUT",
            "/rate-limit",
            json={"requests": requests, "window_seconds": window_seconds},
        )

    def rate_limit(self) -> dict[str, Any]:
        """The rate limit in force and the current window's use."""
        result: dict[str, Any] = self._call("GET", "/rate-limit")
        return result
