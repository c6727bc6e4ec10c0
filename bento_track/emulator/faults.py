"""Fault injection: one queue of rules, consumed one API request at a time.

`fail`, `slow`, `drop` and `storm` rules apply to the next N API requests in
the order they were added (`fail_next(2)` then `drop_next(1)` fails two
requests and drops the third). `reject` rules are different: they stay until
cleared and make `/batch/events` refuse any batch holding a matching event.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Fault", "FaultQueue", "RejectRule", "parse_fault"]

KINDS = ("fail", "slow", "drop", "storm")


@dataclass
class Fault:
    """One queued rule.

    Attributes:
        kind: "fail" (answer `status`), "storm" (429), "slow" (delay the
            answer by `seconds`, then handle normally), "drop" (close the
            connection without an HTTP answer).
        remaining: requests this rule still applies to.
        status: the status of a "fail" or "storm" answer.
        retry_after: the `Retry-After` header of the answer, if any.
        body: the answer's body (a dict becomes JSON, a str is sent as text).
        seconds: the delay of a "slow" rule.
    """

    kind: str
    remaining: int
    status: int = 500
    retry_after: int | None = None
    body: Any = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The rule's attributes as a JSON-ready dict (for the inspection API)."""
        return asdict(self)


@dataclass(frozen=True)
class RejectRule:
    """Refuse `/batch/events` bodies holding an event with this email and/or type."""

    email: str | None = None
    type: str | None = None

    def matches(self, event: Any) -> bool:
        """Whether `event` (a parsed event object) has this rule's email
        (compared case-insensitively) and type; a non-dict never matches."""
        if not isinstance(event, dict):
            return False
        if self.email is not None and not (
            isinstance(event.get("email"), str)
            and event["email"].strip().lower() == self.email.strip().lower()
        ):
            return False
        return self.type is None or event.get("type") == self.type


class FaultQueue:
    """The queued faults and the standing reject rules, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._rejects: list[RejectRule] = []

    def add(self, fault: Fault) -> None:
        """Queue `fault` after those already queued; one applying to no
        request (`remaining` <= 0) is ignored."""
        if fault.remaining > 0:
            with self._lock:
                self._queue.append(fault)

    def add_reject(self, rule: RejectRule) -> None:
        """Add a standing reject rule, kept until `clear`. Raises `ValueError`
        for a rule with neither email nor type."""
        if rule.email is None and rule.type is None:
            raise ValueError("a reject rule needs an email or a type")
        with self._lock:
            self._rejects.append(rule)

    def take(self) -> Fault | None:
        """The fault for the next API request, if any (consumes one use)."""
        with self._lock:
            if not self._queue:
                return None
            head = self._queue[0]
            head.remaining -= 1
            if head.remaining <= 0:
                self._queue.popleft()
            return Fault(
                head.kind, 1, head.status, head.retry_after, head.body, head.seconds
            )

    def rejected(self, events: list[Any]) -> list[int]:
        """Indexes of the events a reject rule matches."""
        with self._lock:
            rules = list(self._rejects)
        if not rules:
            return []
        return [i for i, e in enumerate(events) if any(r.matches(e) for r in rules)]

    def clear(self) -> None:
        """Drop every queued fault and every reject rule."""
        with self._lock:
            self._queue.clear()
            self._rejects.clear()

    def snapshot(self) -> dict[str, Any]:
        """The queued faults (`"queue"`, next first) and the reject rules
        (`"reject"`), as JSON-ready dicts."""
        with self._lock:
            return {
                "queue": [f.to_dict() for f in self._queue],
                "reject": [asdict(r) for r in self._rejects],
            }


#: Bounds on a rule's numbers: wide enough for any test, narrow enough that
#: a typo cannot hang the emulator for days or print an absurd header.
MAX_N = 1_000_000
MAX_RETRY_AFTER = 86_400
MAX_SECONDS = 600.0


def _number(doc: dict[str, Any], name: str, default: Any) -> int | float | None:
    """`doc[name]` (or `default`) if a finite number or None; a bool is not one."""
    value = doc.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return value


def _whole(
    doc: dict[str, Any], name: str, default: Any, low: int, high: int
) -> int | None:
    """`doc[name]` as a whole number in `low..high`, or None when absent/null."""
    value = _number(doc, name, default)
    if value is None:
        return None
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{name} must be a whole number")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return int(value)


def parse_fault(doc: Any) -> Fault | RejectRule:
    """A rule from the inspection API's JSON (`{"kind": "fail", "n": 2, ...}`).

    Raises:
        ValueError: the document is not a valid rule.
    """
    if not isinstance(doc, dict):
        raise ValueError("a fault must be a JSON object")
    kind = doc.get("kind")
    if kind == "reject":
        email, type_ = doc.get("email"), doc.get("type")
        if not isinstance(email, (str, type(None))) or not isinstance(
            type_, (str, type(None))
        ):
            raise ValueError("email and type must be strings")
        if email is None and type_ is None:
            raise ValueError("a reject rule needs an email or a type")
        return RejectRule(email=email, type=type_)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, reject")
    n = _whole(doc, "n", 1, 1, MAX_N)
    if n is None:
        raise ValueError("n must be a number")
    retry_after = _whole(doc, "retry_after", None, 0, MAX_RETRY_AFTER)
    if kind == "storm":
        return Fault(
            "storm",
            n,
            status=429,
            retry_after=2 if retry_after is None else retry_after,
            body=doc.get("body"),
        )
    if kind == "slow":
        seconds = _number(doc, "seconds", None)
        if seconds is None:
            raise ValueError("seconds must be a number")
        if not 0 <= seconds <= MAX_SECONDS:
            raise ValueError(f"seconds must be between 0 and {MAX_SECONDS:g}")
        return Fault("slow", n, seconds=float(seconds))
    if kind == "drop":
        return Fault("drop", n)
    status = _whole(doc, "status", 500, 400, 599)
    if status is None:
        raise ValueError("status must be an HTTP error status (400..599)")
    return Fault(
        "fail", n, status=status, retry_after=retry_after, body=doc.get("body")
    )
