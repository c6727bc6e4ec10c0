"""What every store must do, written once (as fsspec's `tests/abstract` and
SQLAlchemy's `testing/suite` write what every backend must do) and run by
each store (`stores`, see conftest): the queue and its leases, the bound,
the request budget, the 429 pause, reclaim, bisection, accounts, the kinds
of record in a batch, and the counts the exit message and `flush()` read.

Each store a test opens is another process as the store sees it. Time is
the store's clock (`stores.advance`): a FakeClock for memory and SQLite,
Redis's own for Redis, where waits are read within `stores.slack`. Tests
that need a second process take `shared`, which skips the memory store.
"""

from __future__ import annotations

import time
from dataclasses import replace

from bento_track.stores import Account, Store

from ..support.stores import Stores, recs

#: two Bento accounts on one endpoint (a store they share)
ALPHA = Account("https://app.bentonow.com/api/v1", "site-alpha", "pk-alpha")
BRAVO = Account("https://app.bentonow.com/api/v1", "site-bravo", "pk-bravo")


def size(records: list[bytes]) -> int:
    """Bytes the stores count for `records` (a newline each)."""
    return sum(len(r) + 1 for r in records)


def drain(stores: Stores, store: Store) -> list[list[bytes]]:
    """Every batch `store` can take, settled one by one (each waits for the
    budget when it must)."""
    batches = []
    while True:
        claim = store.claim(force=True)
        if claim.lease is None and claim.delay is None:
            return batches  # nothing left
        lease = claim.lease or stores.eventually(
            lambda: store.claim(force=True).lease, claim.delay or 0.0
        )
        batches.append(lease.records)
        assert lease.permit is not None
        store.complete(lease.permit)
        store.ack(lease)


def granted(answer: tuple[int | None, float]) -> tuple[int | None, float] | None:
    """An answer of `Store.acquire` that grants a permit, else None."""
    return answer if answer[0] is not None else None


class StoreContract:
    """The contract (collected by pytest although its name is not `Test*`)."""

    __test__ = True

    # -- the queue -------------------------------------------------------------

    def test_a_full_batch_leaves_at_once_and_a_release_puts_it_back_first(
        self, stores: Stores
    ) -> None:
        store = stores.open()
        assert store.claim(force=False).lease is None  # empty: nothing to wait for
        assert store.put(recs(*range(25))) == []
        assert store.outstanding() == 25
        claim = store.claim(force=False)  # 25 >= 10: a full batch is due now
        assert claim.lease is not None and claim.lease.records == recs(*range(10))
        assert claim.count == 25
        store.complete(claim.lease.permit)
        store.release(claim.lease)  # put back: the same events come first again
        peer = stores.peer(store)
        again = peer.claim(force=False).lease
        assert again is not None and again.records == recs(*range(10))
        assert peer.stats().reclaimed == 0  # a release is not a reclaim
        peer.complete(again.permit)
        peer.ack(again)
        # The peer delivered this process's events: its count says so.
        assert store.outstanding() == 15
        stats = store.stats()
        assert (stats.depth, stats.leased, stats.leases) == (15, 0, 0)
        assert stats.nbytes == size(recs(*range(10, 25)))

    def test_two_processes_lease_disjoint_batches(self, stores: Stores) -> None:
        a = stores.open()
        b = stores.peer(a)
        a.put(recs(*range(20)))
        la, lb = a.claim(force=False).lease, b.claim(force=False).lease
        assert la is not None and lb is not None
        assert la.records == recs(*range(10)) and lb.records == recs(*range(10, 20))
        assert a.claim(force=True).lease is None  # nothing left unleased
        a.ack(la)
        b.ack(lb)
        # b delivered a's events: a's outstanding count says so (flush() reads it)
        assert a.outstanding() == 0 and a.stats().depth == 0

    def test_full_batches_leave_and_the_rest_waits_a_full_interval(
        self, stores: Stores
    ) -> None:
        store = stores.open()
        flush = stores.policy.flush_interval
        assert store.put(recs(*range(25))) == []
        for first in (0, 10):
            claim = store.claim(force=False)
            assert claim.lease is not None
            assert claim.lease.records == recs(*range(first, first + 10))
            store.complete(claim.lease.permit)
            store.ack(claim.lease)
        # Five left: not a full batch, and a batch just left: it waits.
        wait = store.claim(force=False)
        assert wait.lease is None and wait.count == 5 and not wait.budget_bound
        assert wait.delay == stores.left(flush)
        forced = store.claim(force=True).lease  # a flush
        assert forced is not None and forced.records == recs(*range(20, 25))
        store.complete(forced.permit)
        store.ack(forced)
        stats = store.stats()
        assert stats.kind == stores.kind and stats.depth == 0 and stats.leased == 0
        assert stats.budget_used == 3 and stats.budget_limit == 3
        assert store.outstanding() == 0

    def test_a_partial_batch_waits_for_its_oldest_events_age_unless_forced(
        self, stores: Stores
    ) -> None:
        store = stores.open()
        flush = stores.policy.flush_interval
        store.put(recs(1, 2, 3))
        claim = store.claim(force=False)
        assert claim.lease is None and claim.delay == stores.left(flush)
        assert claim.count == 3 and claim.nbytes == size(recs(1, 2, 3))
        assert claim.budget_bound is False
        stores.advance(flush / 2)
        assert store.stats().oldest_age == stores.since(flush / 2)
        lease = stores.eventually(lambda: store.claim(force=False).lease, flush / 2)
        assert len(lease) == 3
        store.complete(lease.permit)
        store.ack(lease)
        store.put(recs(4))
        assert store.claim(force=False).lease is None  # waits a new interval
        forced = store.claim(force=True).lease
        assert forced is not None and forced.records == recs(4)

    def test_a_batch_takes_one_kind_of_record_in_queue_order(
        self, stores: Stores
    ) -> None:
        """Events, subscriber upserts and commands share the queue; a batch
        is cut where the kind changes."""
        store = stores.open(replace(stores.policy, max_count=100))
        upsert = b'S{"email":"a@example.com"}'
        command = b'C{"command":"unsubscribe","email":"a@example.com"}'
        store.put(recs(1, 2) + [upsert] * 3 + [command] * 2 + recs(3))
        assert drain(stores, store) == [
            recs(1, 2),
            [upsert] * 3,
            [command] * 2,
            recs(3),
        ]

    # -- what the exit message and flush() count ----------------------------------

    def test_outstanding_kept_and_lost_count_what_this_process_put(
        self, stores: Stores
    ) -> None:
        store = stores.open()
        store.put(recs(*range(12)))
        assert store.outstanding() == 12
        # What outlives the process: all of it, or none in memory.
        assert store.kept() == (12 if stores.durable else 0)
        assert store.memory_held() == (0 if stores.durable else 12)
        assert (store.lost(), store.unanswered()) == (0, 0)
        lease = store.claim(force=True).lease
        assert lease is not None and len(lease) == 10
        assert store.outstanding() == 12  # leased events are still in the store
        store.complete(lease.permit)
        store.ack(lease)
        assert store.outstanding() == 2
        assert store.kept() == (2 if stores.durable else 0)
        [rest] = drain(stores, store)
        assert rest == recs(10, 11)
        assert (store.outstanding(), store.kept(), store.lost()) == (0, 0, 0)

    # -- the bound ---------------------------------------------------------------

    def test_the_bound_drops_the_newest_events(self, stores: Stores) -> None:
        one = size(recs(0))  # 9 bytes each
        store = stores.open(max_bytes=one * 4)
        assert store.put(recs(0, 1, 2)) == []
        assert store.put(recs(3, 4, 5)) == recs(4, 5)
        assert store.stats().depth == 4 and store.stats().dropped == 2

    def test_drop_oldest_drops_the_oldest_waiting_events(self, stores: Stores) -> None:
        one = size(recs(0))
        policy = replace(stores.policy, overflow="drop_oldest")
        store = stores.open(policy, max_bytes=one * 4)
        store.put(recs(0, 1, 2))
        assert store.put(recs(3, 4, 5)) == recs(0, 1)
        lease = store.claim(force=True).lease
        assert lease is not None and lease.records == recs(2, 3, 4, 5)
        assert store.outstanding() == 4

    def test_drop_oldest_never_drops_a_leased_event(self, stores: Stores) -> None:
        policy = replace(
            stores.policy, max_count=4, requests_per_window=100, overflow="drop_oldest"
        )
        store = stores.open(policy, max_bytes=200)  # about 18 records of 11 bytes
        store.put(recs(*range(100, 112)))
        held = store.claim(force=True).lease  # being sent: never trimmed
        assert held is not None
        gone = store.put(recs(*range(112, 124)))
        assert gone and set(gone).isdisjoint(held.records)
        assert store.stats().nbytes <= 200

    # -- the request budget ---------------------------------------------------------

    def test_one_budget_for_every_process_and_one_permit_a_batch(
        self, stores: Stores
    ) -> None:
        a = stores.open()
        b = stores.peer(a)
        window = stores.policy.window
        a.put(recs(*range(100)))
        permits = []
        for store in (a, b, a):
            claim = store.claim(force=False)
            assert claim.lease is not None and claim.lease.permit is not None
            permits.append((store, claim.lease.permit))
        # three requests in flight: a fourth waits for one of them to end
        for store in (a, b):
            held = store.claim(force=False)
            assert held.lease is None and held.budget_bound and held.delay
        permit, wait = b.acquire()
        assert permit is None and wait > 0
        for store, permit in permits:
            stores.advance(window / 10)
            store.complete(permit)  # ended at 1, 2, 3 tenths of the window
        # The first to end frees its place a window after it ended.
        claim = b.claim(force=False)
        assert claim.lease is None and claim.delay == stores.left(window * 0.8)
        permit, wait = stores.eventually(
            lambda: granted(b.acquire()), window * 0.8 + 0.01
        )
        assert permit is not None and wait == 0.0
        # Two ended within the window, one flying; on a real clock the two
        # may have left the window by the time the figures are read.
        used = a.stats().budget_used
        assert used == 3 if not stores.slack else 1 <= used <= 3
        b.complete(permit)

    # -- the 429 pause -----------------------------------------------------------------

    def test_a_429_pauses_every_process(self, stores: Stores) -> None:
        a = stores.open()
        b = stores.peer(a)
        pause = 3 * stores.policy.window
        b.put(recs(*range(10)))
        a.pause(pause)
        claim = b.claim(force=False)
        assert claim.lease is None and claim.budget_bound
        assert claim.delay == stores.left(pause)
        a.pause(1.0)  # never shortens
        permit, wait = b.acquire()
        assert permit is None and wait == stores.left(pause)
        until = b.paused_until()
        assert until is not None and until - stores.now() == stores.left(pause)
        assert b.stats().paused_until is not None
        lease = stores.eventually(lambda: b.claim(force=False).lease, pause)
        assert lease is not None

    # -- settling a lease --------------------------------------------------------------

    def test_bisection_halves_settle_apart_and_a_half_put_back_is_sent_once(
        self, stores: Stores
    ) -> None:
        policy = replace(stores.policy, max_count=40, requests_per_window=100)
        a = stores.open(policy)
        b = stores.peer(a)
        a.put(recs(*range(10)))  # in chunks of 4, 4 and 2: halves cut chunks
        lease = a.claim(force=True).lease
        assert lease is not None and len(lease) == 10
        first, second = a.split(lease)
        first_a, first_b = a.split(first)  # 2 + 3
        a.reject(first_a)  # refused for good
        a.ack(first_b)
        # Five are leased; in whole chunks, the one first_b cut (4) too.
        assert a.stats().leased == (6 if stores.whole_chunks else 5)
        a.release(second)  # at shutdown: the rest goes back
        stats = a.stats()
        assert (stats.depth, stats.leased) == (5, 0)
        back = b.claim(force=True).lease
        assert back is not None
        # In queue order; in whole chunks, a cut one goes back behind.
        got = sorted(back.records) if stores.whole_chunks else back.records
        assert got == recs(*range(5, 10))
        b.ack(back)
        assert b.stats().depth == 0 and a.outstanding() == 0

    def test_what_is_settled_or_released_is_held_by_nobody(
        self, stores: Stores
    ) -> None:
        policy = replace(stores.policy, max_count=40, requests_per_window=100)
        store = stores.open(policy)
        store.put(recs(*range(10)))
        lease = store.claim(force=True).lease
        assert lease is not None
        first, second = store.split(lease)
        store.ack(first)
        store.release(second)
        stats = store.stats()
        assert (stats.depth, stats.leased, stats.leases) == (5, 0, 0)

    def test_a_dead_holders_lease_is_taken_over_and_counted(
        self, shared: Stores
    ) -> None:
        lease_timeout = 1.0
        dead = shared.open(lease_timeout=lease_timeout)
        alive = shared.peer(dead)
        dead.put(recs(*range(10)))
        lease = dead.claim(force=False).lease
        assert lease is not None
        taken_at = time.monotonic()
        assert alive.claim(force=True).lease is None
        stats = alive.stats()
        assert (stats.leased, stats.leases) == (10, 1)
        shared.die(dead)
        after = shared.takeover_after(lease_timeout)
        taken = shared.eventually(lambda: alive.claim(force=True).lease, after)
        assert after <= time.monotonic() - taken_at < after + 1.5
        assert taken.records == lease.records
        stats = alive.stats()
        assert (stats.reclaimed, stats.leased) == (10, 10)
        dead.ack(lease)  # the dead holder's late ack
        assert alive.stats().depth == (0 if shared.whole_chunks else 10)
        alive.complete(taken.permit)
        alive.ack(taken)
        assert alive.stats().depth == 0

    # -- accounts ----------------------------------------------------------------------

    def test_accounts_sharing_a_store_claim_only_their_own_events(
        self, shared: Stores
    ) -> None:
        alpha = shared.open(replace(shared.policy, account=ALPHA))
        bravo = shared.open(replace(shared.policy, account=BRAVO))
        # Interleaved writes: the accounts' chunks alternate in the store.
        for i in range(0, 40, 2):
            alpha.put([b'{"a":%d}' % i, b'{"a":%d}' % (i + 1)])
            bravo.put([b'{"b":%d}' % i, b'{"b":%d}' % (i + 1)])
        for store, name in ((alpha, b"a"), (bravo, b"b")):
            seen = [r for batch in drain(shared, store) for r in batch]
            assert seen == [b'{"%s":%d}' % (name, i) for i in range(40)]
        assert (alpha.outstanding(), bravo.outstanding()) == (0, 0)

    def test_each_account_has_its_own_budget_pause_and_figures(
        self, shared: Stores
    ) -> None:
        alpha = shared.open(replace(shared.policy, account=ALPHA))
        alpha_too = shared.peer(alpha)  # another process of alpha
        bravo = shared.open(replace(shared.policy, account=BRAVO))
        alpha.put(recs(*range(50)))
        bravo.put(recs(*range(50)))
        for _ in range(3):  # alpha spends its whole budget (3 per window)
            lease = alpha.claim(force=True).lease
            assert lease is not None
            alpha.complete(lease.permit)
            alpha.ack(lease)
        blocked = alpha_too.claim(force=True)
        assert blocked.lease is None and blocked.budget_bound  # its processes'
        lease = bravo.claim(force=True).lease  # bravo's budget is its own
        assert lease is not None
        bravo.complete(lease.permit)
        bravo.release(lease)
        bravo.pause(30.0)  # a 429 of bravo's account pauses only bravo
        assert bravo.paused_until() is not None and alpha.paused_until() is None
        assert bravo.acquire()[0] is None
        a, b = alpha_too.stats(), bravo.stats()
        assert not a.stale and not b.stale
        assert (a.site_uuid, a.depth, a.budget_used) == ("site-alpha", 20, 3)
        assert (b.site_uuid, b.depth, b.budget_used) == ("site-bravo", 50, 1)
        assert b.paused_until is not None and a.paused_until is None
        shown = {s.site_uuid: s for s in a.accounts}
        assert {name: s.depth for name, s in shown.items()} == {
            "site-alpha": 20,
            "site-bravo": 50,
        }
        assert shown["site-bravo"].paused_until is not None
        assert shown["site-alpha"].paused_until is None

    def test_drop_oldest_drops_only_the_accounts_own_events(
        self, shared: Stores
    ) -> None:
        policy = replace(shared.policy, overflow="drop_oldest")
        alpha = shared.open(replace(policy, account=ALPHA), max_bytes=400)
        bravo = shared.open(replace(policy, account=BRAVO), max_bytes=400)
        bravo.put(recs(*range(20)))  # about 220 bytes
        dropped = alpha.put(recs(*range(100, 140)))  # 440 bytes: alpha overflows
        assert dropped and all(r.startswith(b'{"seq":1') for r in dropped)
        assert bravo.stats().depth == 20
