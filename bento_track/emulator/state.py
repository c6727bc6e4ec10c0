"""The emulator's run-time state: store, faults, rate limit and request log."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from .faults import FaultQueue
from .ratelimit import SlidingWindowLimiter
from .settings import EmulatorSettings
from .store import AccountData

__all__ = ["EmulatorState", "Refusals", "RequestLog"]


class RequestLog:
    """Every API request: method, path, status, arrival time, record count.

    Entries are numbered when the request arrives and listed in that order,
    even when a slow answer finishes after a later request. Headers are never
    kept, so the Authorization header cannot leak through the log.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._entries: dict[int, dict[str, Any]] = {}

    def arrive(self) -> int:
        """A sequence number for a request that just arrived."""
        with self._lock:
            self._next += 1
            return self._next

    def record(
        self, seq: int, method: str, path: str, status: int, time: float, count: int
    ) -> None:
        """Log an answered request (status 0 = connection dropped, no answer)."""
        entry = {
            "id": seq,
            "method": method,
            "path": path,
            "status": status,
            "time": time,
            "count": count,
        }
        with self._lock:
            self._entries[seq] = entry

    def entries(self) -> list[dict[str, Any]]:
        """The answered requests in arrival order, each a dict of `id`,
        `method`, `path`, `status`, `time` and `count` (see `record`)."""
        with self._lock:
            return [self._entries[k] for k in sorted(self._entries)]

    def counts(self) -> dict[str, int]:
        """Requests by status, as strings ("200", "429", ...)."""
        with self._lock:
            return dict(Counter(str(e["status"]) for e in self._entries.values()))

    def clear(self) -> None:
        """Forget every logged request (sequence numbers keep counting)."""
        with self._lock:
            self._entries.clear()


class Refusals:
    """How many requests `LocalOnly` refused, by status: 400/421 for a
    `Host` it does not answer, 403 for a cross-site write, 415 for a
    control body that is not JSON. Shown in the summary and the inbox, so a
    page trying its luck against the emulator does not go unnoticed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, status: int) -> None:
        """Count one refusal."""
        with self._lock:
            self._counts[str(status)] += 1

    def counts(self) -> dict[str, int]:
        """Refusals by status, as strings ("403", "421", ...)."""
        with self._lock:
            return dict(self._counts)

    def clear(self) -> None:
        """Forget every refusal."""
        with self._lock:
            self._counts.clear()


class EmulatorState:
    """Everything one emulated account holds while it runs.

    Attributes:
        generation: bumped by `reset()`; a slow answer started before a reset
            is abandoned instead of writing into the next test's data.
        closing: set when the server stops, so slow answers end at once.
    """

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.store = AccountData(settings.db_path)
        self.faults = FaultQueue()
        self.limiter = SlidingWindowLimiter(
            settings.requests_per_minute, settings.rate_window, settings.clock
        )
        self.log = RequestLog()
        self.refusals = Refusals()
        self.generation = 0
        self.closing = False

    def reset(self) -> None:
        """Clear the data, the faults, the request log, the refusal counts and
        the rate-limit window. The rate-limit settings stay as they are."""
        self.generation += 1
        self.faults.clear()
        self.log.clear()
        self.refusals.clear()
        self.limiter.reset()
        self.store.clear()

    def summary(self) -> dict[str, Any]:
        """Counts and settings for people; never the secret key."""
        s = self.settings
        return {
            "site_uuid": s.site_uuid,
            "publishable_key": s.publishable_key,
            "db_path": s.db_path,
            "authors": None if s.authors is None else list(s.authors),
            "max_body_bytes": s.max_body_bytes,
            "allowed_hosts": list(s.allowed_hosts),
            "rate_limit": self.limiter.snapshot(),
            "counts": {
                kind: self.store.count(kind)
                for kind in (
                    "events",
                    "subscribers",
                    "emails",
                    "commands",
                    "tags",
                    "fields",
                )
            },
            "requests": self.log.counts(),
            "refused": self.refusals.counts(),
            "faults": self.faults.snapshot(),
        }
