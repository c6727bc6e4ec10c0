"""What a Redis store's process keeps while Redis cannot take it.

Three things wait in the process while Redis is out (down, hung, out of
memory), and go to Redis once it answers, oldest first:

- events, in the fallback store (this process's memory, or a SQLite file
  named by `?fallback=`): new events go there too while older ones wait,
  so the order holds;
- a write whose answer was lost (a timeout: Redis may or may not have
  applied it), kept aside and sent again with its sequence number, which
  Redis applies only once (`Limbo`); after `_LIMBO_MAX_AGE` it goes to the
  fallback instead (its events may then arrive twice);
- settles, releases and a 429 pause Redis could not take yet
  (`PendingOp`): each is idempotent, so it is simply done again.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from .._core.records import Record
from .._internal import RateLimitedLog, logger
from .base import Lease, Store
from .redis_breaker import AnswerLost, RedisUnavailable

__all__ = ["Limbo", "Op", "OutageBuffer", "PendingOp"]

#: a write whose answer was lost waits this long (real seconds) to be sent
#: again with its sequence number before it goes to the fallback instead
_LIMBO_MAX_AGE = 30.0
#: batches moved from the fallback per step (the worker has other work)
_MOVE_BATCHES = 20


class Op(enum.Enum):
    """A step on Redis that can wait for it."""

    #: delete settled chunks (delivered or refused)
    SETTLE = "settle"
    #: put held chunks back for any process
    RELEASE = "release"
    #: push this process's 429 pause to every process
    PAUSE = "pause"


@dataclass(frozen=True)
class PendingOp:
    """A step Redis could not take when asked (see `Op`).

    Attributes:
        op: which step.
        sids: the chunks it is about (SETTLE, RELEASE).
        sent: a SETTLE of delivered chunks (a batch left then).
    """

    op: Op
    sids: tuple[str, ...] = ()
    sent: bool = False


@dataclass
class Limbo:
    """A write whose answer was lost, to send again with the same `seq`.

    Attributes:
        seq: its sequence number.
        chunks: what it wrote.
        since: when its answer was lost (time.monotonic()).
        from_fallback: the fallback's lease it moved (to ack or release),
            or None for new events.
        records: its events (`unanswered` counts them for new events only:
            moved ones are still the fallback's until acked).
    """

    seq: int
    chunks: list[list[Record]]
    since: float
    from_fallback: Lease | None = None
    records: int = 0


#: writes chunks under a sequence number: (chunks kept, records deleted
#: for room); raises `RedisUnavailable` (`AnswerLost`)
Write = Callable[[list[list[Record]], int], tuple[int, list[Record]]]


class OutageBuffer:
    """The store's write path through outages (see the module docstring).

    Args:
        fallback: where events wait while Redis cannot take them.
        write: the store's write to Redis (`Write`).
        apply: the store's way to take a `PendingOp` now (raises
            `RedisUnavailable`).
        chunk: cuts records into the chunks `write` takes.
        usable: whether Redis may be called now (the breaker).
        location: the Redis store, for messages.
        log: the store's rate-limited log.
    """

    def __init__(
        self,
        fallback: Store,
        *,
        write: Write,
        apply: Callable[[PendingOp], None],
        chunk: Callable[[list[Record]], list[list[Record]]],
        usable: Callable[[], bool],
        location: str,
        log: RateLimitedLog,
    ) -> None:
        self.fallback = fallback
        self._write = write
        self._apply = apply
        self._chunk = chunk
        self._usable = usable
        self._location = location
        self._log = log
        self._seq = 0
        self._limbo: Limbo | None = None
        self._pending: list[PendingOp] = []

    def put(self, records: list[Record]) -> list[Record]:
        """Write `records` to Redis, or to the fallback while Redis is out or
        older events wait; return those dropped (by the bound of either)."""
        if self._usable():
            self.catch_up()
        if self._limbo is not None or self._fallback_waiting() or not self._usable():
            # Behind what waits locally (oldest first), or Redis is out.
            return self.fallback.put(records)
        chunks = self._chunk(records)
        self._seq += 1
        seq = self._seq
        try:
            kept, old = self._write(chunks, seq)
        except AnswerLost:
            self._limbo = Limbo(seq, chunks, time.monotonic(), records=len(records))
            return []
        except RedisUnavailable:
            return self.fallback.put(records)
        return old + [r for chunk in chunks[kept:] for r in chunk]

    def apply(self, op: PendingOp) -> None:
        """Take `op` on Redis now, or once it answers again."""
        try:
            self._apply(op)
        except RedisUnavailable:
            # Idempotent: done again once Redis answers. Until then the
            # chunks stay pending under our name (a settle that never comes
            # is a reclaim after the visibility timeout).
            self._pending.append(op)

    def catch_up(self) -> None:
        """With Redis answering: take the steps that waited, resend a write
        whose answer was lost, move what waits in the fallback."""
        try:
            while self._pending:
                self._apply(self._pending[0])
                self._pending.pop(0)
            self._resolve_limbo()
            self._move_fallback()
        except RedisUnavailable:
            pass

    def drain(self) -> None:
        """At exit: move what would end with the process (a memory fallback,
        a write in limbo) into Redis while it answers."""
        while self._usable():
            before = self.ending()
            if before <= 0:
                return
            self.catch_up()
            if self.ending() >= before:
                return  # Redis stopped answering, or is full

    def waiting(self) -> int:
        """Events this process holds for Redis (fallback and limbo)."""
        return self.fallback.outstanding() + self.unanswered()

    def ending(self) -> int:
        """Events that end with this process: in a memory fallback, in limbo."""
        fallback = self.fallback
        return fallback.outstanding() - fallback.kept() + self.unanswered()

    def say_lost(self) -> int:
        """At exit: log how many events end with the process (what `drain`
        could not move); return how many."""
        unanswered = self.unanswered()
        in_memory = self.ending() - unanswered
        if in_memory:
            logger.warning(
                "bento_track: %d events could not reach the Redis store %s "
                "and are lost with this process (configure ?fallback="
                "sqlite:////PATH to keep them on disk)",
                in_memory,
                self._location,
            )
        if unanswered:
            logger.warning(
                "bento_track: %d events were written to the Redis store %s "
                "without an answer and may be lost with this process "
                "(Redis may still apply the write)",
                unanswered,
                self._location,
            )
        return in_memory + unanswered

    def unanswered(self) -> int:
        """Events of a write Redis did not answer (new ones, not moved ones)."""
        limbo = self._limbo
        return 0 if limbo is None or limbo.from_fallback is not None else limbo.records

    def _resolve_limbo(self) -> None:
        limbo = self._limbo
        if limbo is None:
            return
        try:
            self._write(limbo.chunks, limbo.seq)
        except AnswerLost:
            if time.monotonic() - limbo.since > _LIMBO_MAX_AGE:
                self._limbo_to_fallback(limbo)
            raise
        except RedisUnavailable:
            self._limbo_to_fallback(limbo)
            raise
        # Dropped by the bound at that write: rare, and said by the store's
        # `dropped` counter (the events were reported written).
        self._limbo = None
        if limbo.from_fallback is not None:
            self.fallback.ack(limbo.from_fallback)

    def _limbo_to_fallback(self, limbo: Limbo) -> None:
        # Redis may have applied it after all: the events may arrive twice.
        self._limbo = None
        if limbo.from_fallback is not None:
            self.fallback.release(limbo.from_fallback)
            return
        dropped = self.fallback.put([r for chunk in limbo.chunks for r in chunk])
        if dropped:
            self._log.warn(
                "redis_fallback_full",
                len(dropped),
                "events dropped: the fallback %s is full",
                self.fallback.location,
            )

    def _fallback_waiting(self) -> bool:
        if self.fallback.outstanding():
            return True
        # A durable fallback may hold other processes' (or dead ones') events.
        if not self.fallback.durable:
            return False
        try:
            return self.fallback.stats().depth > 0
        except Exception:
            return False

    def _move_fallback(self) -> None:
        """Move events from the fallback into Redis (bounded per call)."""
        fallback = self.fallback
        for _ in range(_MOVE_BATCHES):
            if not self._fallback_waiting():
                return
            lease = fallback.claim(True).lease
            if lease is None:
                return
            if lease.permit is not None:
                fallback.complete(lease.permit)
            chunks = self._chunk(lease.records)
            self._seq += 1
            try:
                kept, old = self._write(chunks, self._seq)
            except AnswerLost:
                self._limbo = Limbo(
                    self._seq,
                    chunks,
                    time.monotonic(),
                    from_fallback=lease,
                    records=len(lease.records),
                )
                raise
            except RedisUnavailable:
                fallback.release(lease)
                raise
            if kept < len(chunks) or old:
                self._log.warn(
                    "redis_full",
                    sum(map(len, chunks[kept:])) + len(old),
                    "events dropped moving them into the Redis "
                    "store %s: it is full (max_store_bytes)",
                    self._location,
                )
            fallback.ack(lease)
