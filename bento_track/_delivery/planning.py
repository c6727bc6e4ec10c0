"""Planning the worker's next step: a request to make now (a bisection half
or a batch the store hands out, paid for by the request budget), or how long
to wait and how many inbox events should wake it sooner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._core.records import BODY_OVERHEAD
from ..stores import Claim, Lease, Permit
from .inbox import NEVER

if TYPE_CHECKING:
    from .worker import Worker, WorkerSettings

__all__ = ["Job", "Plan", "plan"]

_IDLE_WAIT = None  # wait for events without a timeout


@dataclass
class Job:
    """One request to make: a lease and the permit paid for it."""

    lease: Lease
    permit: Permit
    #: a bisection half (put back in `Outcomes.pending`, not the store)
    from_pending: bool


#: (seconds to wait, inbox length that should wake the worker, or a request
#: to make now); a delay of None means nothing is waiting to be sent
Plan = tuple[float | None, int, Job | None]


def plan(worker: Worker, flushing: bool) -> Plan:
    """The worker's next step (worker thread only); `flushing` sends what
    waits without letting a batch age."""
    if worker.auth_failed:
        return None, NEVER, None
    outcomes = worker.outcomes
    if worker.broken is not None:
        outcomes.drop_broken()
        return None, 1, None  # wake for new events: they are dropped too
    now = worker.clock.monotonic()
    backoff = outcomes.retry_at - now
    if outcomes.pending:
        if backoff > 0:
            return backoff, NEVER, None
        permit, wait = worker.store.acquire()
        if permit is None:
            return wait, NEVER, None
        return 0.0, NEVER, Job(outcomes.pending.pop(), permit, True)
    if backoff > 0:
        if worker.durable and flushing:
            worker.ledger.refresh()  # another process may deliver meanwhile
        return backoff, NEVER, None
    claim = worker.store.claim(flushing)
    if claim.lease is not None:
        permit = claim.lease.permit
        return 0.0, NEVER, Job(claim.lease, 0 if permit is None else permit, False)
    if worker.durable:
        if flushing or worker.ledger.outstanding:
            # Another process may have delivered ours: `queue_depth` and
            # `flush()` follow within a poll, not at our next write.
            worker.ledger.refresh()
        # Grouped draining decides when the inbox moves.
        return claim.delay, 1, None
    return _memory_wake(claim, flushing, worker.settings)


def _memory_wake(claim: Claim, flushing: bool, settings: WorkerSettings) -> Plan:
    delay = claim.delay
    if delay is None:
        return _IDLE_WAIT, 1, None
    count = claim.count
    if flushing or claim.budget_bound:
        return delay, NEVER, None  # more events cannot make us send sooner
    # Waiting for the batch to age: wake early if the inbox can fill it.
    need = settings.max_batch_size - count
    if count:
        per_event = claim.nbytes / count
        room = settings.max_batch_bytes - BODY_OVERHEAD - claim.nbytes
        need = min(need, int(room / per_event) + 1)
    return delay, max(1, need), None
