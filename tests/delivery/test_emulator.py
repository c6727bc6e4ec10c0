"""Delivery proven against the emulator over loopback HTTP, with its fault
injection: the acceptance items of issue 3, one test each."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time

import bento_track
from bento_track._core.clock import FakeClock
from bento_track.events import Event
from bento_track.stores import MemoryQueue

from ..helpers import posts as _post_requests
from ..helpers import seqs as _seqs
from ..support.processes import in_forked_child
from .conftest import wait_until

FAST = dict(requests_per_minute=10_000, rate_window=60.0, flush_interval=0.05)


def test_eight_threads_deliver_each_event_once_in_bounded_batches(
    fast_emulator, clients
) -> None:
    client = clients(**fast_emulator.client_kwargs(), **FAST, max_queue_size=50_000)

    def produce(t: int) -> None:
        for i in range(2500):
            client.track(
                "page.view", email=f"t{t}@example.com", details={"seq": t * 2500 + i}
            )

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(30) is True
    seqs = _seqs(fast_emulator)
    assert len(seqs) == 20_000 and set(seqs) == set(range(20_000))
    requests = _post_requests(fast_emulator)
    assert all(r["status"] == 200 for r in requests)
    assert all(1 <= r["count"] <= 1000 for r in requests)
    assert sum(r["count"] for r in requests) == 20_000
    stats = client.stats()
    assert stats.sent == stats.accepted == stats.enqueued == 20_000
    assert stats.dropped == {} and stats.queue_depth == 0


def test_batches_respect_the_byte_limit(fast_emulator, clients) -> None:
    client = clients(**fast_emulator.client_kwargs(), **FAST, max_batch_bytes=64 * 1024)
    sizes: list[int] = []
    bento_track.signals.batch_sent.connect(
        recv := lambda s, **kw: sizes.append(
            sum(len(e.details["pad"]) for e in kw["events"])
        ),
        sender=client,
    )
    for i in range(300):
        client.track("a", email="u@example.com", details={"seq": i, "pad": "x" * 1000})
    assert client.flush(10)
    bento_track.signals.batch_sent.disconnect(recv)
    assert sorted(_seqs(fast_emulator)) == list(range(300))
    assert len(sizes) >= 5 and max(sizes) < 64 * 1024


def test_server_outage_then_recovery_loses_nothing(fast_emulator, clients) -> None:
    clock = FakeClock(auto_advance=True)  # backoff waits cost no real time
    client = clients(**fast_emulator.client_kwargs(), **FAST, clock=clock)
    fast_emulator.inspect.fail_next(5, status=503)
    for i in range(50):
        client.track("a", email="u@example.com", details={"seq": i})
    assert client.flush(10) is True
    assert sorted(_seqs(fast_emulator)) == list(range(50))
    stats = client.stats()
    assert stats.retried == 5 and stats.sent == 50 and stats.last_error
    assert stats.responses["503"] == 5 and stats.responses == (
        fast_emulator.inspect.request_counts()
    )
    assert "503" in stats.last_error
    backoffs = [w for w in clock.waits if w > 0.2]
    assert len(backoffs) >= 5  # jittered exponential: 0.25-0.5, 0.5-1, 1-2, ...
    assert max(backoffs) >= 4.0


def test_rate_limit_storm_honours_retry_after(fast_emulator, clients) -> None:
    clock = FakeClock(auto_advance=True)
    client = clients(**fast_emulator.client_kwargs(), **FAST, clock=clock)
    fast_emulator.inspect.rate_limit_storm(3, retry_after=7)
    for i in range(40):
        client.track("a", email="u@example.com", details={"seq": i})
    assert client.flush(10) is True
    assert sorted(_seqs(fast_emulator)) == list(range(40))
    counts = fast_emulator.inspect.request_counts()
    assert counts.get("429") == 3
    assert len([w for w in clock.waits if 6.9 <= w <= 7.1]) == 3  # paused 7 s each
    stats = client.stats()
    assert stats.retried == 3
    # Every request by how it ended, as the emulator's own log counts them.
    assert stats.responses == counts and sum(stats.responses.values()) == stats.requests


def test_rate_limit_pause_blocks_all_sending_until_it_ends(
    fast_emulator, clients
) -> None:
    clock = FakeClock()  # driven by hand
    client = clients(**fast_emulator.client_kwargs(), **FAST, clock=clock)
    fast_emulator.inspect.rate_limit_storm(1, retry_after=30)
    client.track("a", email="u@example.com", details={"seq": 0})
    flusher = threading.Thread(target=client.flush, args=(10,))
    flusher.start()
    wait_until(lambda: fast_emulator.inspect.request_counts().get("429") == 1)
    wait_until(lambda: client.stats().paused_until is not None and clock.waiting)
    assert fast_emulator.inspect.request_counts().get("200") is None
    clock.advance(29.0)
    assert fast_emulator.inspect.request_counts().get("200") is None
    assert client.stats().paused_until is not None
    clock.advance(1.1)
    flusher.join(10)
    assert _seqs(fast_emulator) == [0]


def test_request_rate_never_exceeds_the_window_limit(emulator, clients) -> None:
    limit, window = 5, 1.0
    emulator.inspect.set_rate_limit(limit, window)
    client = clients(
        **emulator.client_kwargs(),
        requests_per_minute=limit,
        rate_window=window,
        max_batch_size=10,
        flush_interval=0.01,
    )
    for i in range(130):  # 13 requests: more than two windows' worth
        client.track("a", email="u@example.com", details={"seq": i})
    assert client.flush(15) is True
    requests = _post_requests(emulator)
    assert len(requests) == 13
    assert all(r["status"] == 200 for r in requests)
    times = sorted(r["time"] for r in requests)
    for i, start in enumerate(times):
        in_window = [t for t in times[i:] if t - start < window]
        assert len(in_window) <= limit
    assert sorted(_seqs(emulator)) == list(range(130))


def test_one_poison_event_is_isolated_and_reported(fast_emulator, clients) -> None:
    fast_emulator.inspect.reject_events(email="poison@example.com")
    client = clients(**fast_emulator.client_kwargs(), **dict(FAST, flush_interval=60.0))
    dropped: list[tuple[str, list[Event], object]] = []

    def on_drop(sender, *, events, reason, **kw):
        dropped.append((reason, events, kw.get("error")))

    bento_track.signals.event_dropped.connect(on_drop, sender=client)
    for i in range(1000):
        email = "poison@example.com" if i == 617 else f"u{i}@example.com"
        client.track("a", email=email, details={"seq": i})
    assert client.flush(20) is True
    bento_track.signals.event_dropped.disconnect(on_drop)
    seqs = _seqs(fast_emulator)
    assert len(seqs) == 999 and 617 not in seqs
    assert len(dropped) == 1
    reason, events, error = dropped[0]
    assert reason == "rejected" and events[0].email == "poison@example.com"
    assert error is not None and str(error)
    stats = client.stats()
    assert (
        stats.rejected == 1 and stats.dropped == {"rejected": 1} and stats.sent == 999
    )


def test_shutdown_against_a_hanging_server_returns_in_time(
    fast_emulator, clients
) -> None:
    fast_emulator.inspect.slow_next(5, 30)
    client = clients(**fast_emulator.client_kwargs(), **FAST)
    for i in range(10):
        client.track("a", email="u@example.com", details={"seq": i})
    wait_until(lambda: client.stats().queue_depth == 10 and client._worker.is_alive())
    started = time.monotonic()
    left = client.shutdown(timeout=1)
    assert time.monotonic() - started < 1.6
    assert left == 10
    client.track("a", email="u@example.com")
    assert client.stats().dropped == {"shutdown": 1}


def test_flush_returns_false_on_timeout(fast_emulator, clients) -> None:
    fast_emulator.inspect.slow_next(1, 5)
    client = clients(**fast_emulator.client_kwargs(), **FAST)
    client.track("a", email="u@example.com")
    started = time.monotonic()
    assert client.flush(0.3) is False
    assert time.monotonic() - started < 1.0


def test_configured_read_timeout_applies_to_batches(fast_emulator, clients) -> None:
    """The worker's prebuilt batch request still carries the client's
    timeouts: a late answer is abandoned after `read_timeout`, then retried."""
    fast_emulator.inspect.slow_next(1, 5)
    client = clients(
        **fast_emulator.client_kwargs(),
        **FAST,
        read_timeout=0.3,
        retry_base_delay=0.01,
    )
    client.track("a", email="u@example.com")
    started = time.monotonic()
    assert client.flush(4) is True
    assert time.monotonic() - started < 3.0
    stats = client.stats()
    assert (1, 1) == (stats.sent, stats.retried)


def _child_delivers(client) -> None:
    """Fork; the child tracks 7 events and must deliver them."""

    def child() -> str:
        for i in range(7):
            client.track("a", email="child@example.com", details={"seq": 100 + i})
        return f"flushed {client.flush(10)}, sent {client.stats().sent}"

    assert in_forked_child(child) == "flushed True, sent 7"


def test_forked_child_delivers_its_own_events(fast_emulator, clients) -> None:
    client = clients(**fast_emulator.client_kwargs(), **dict(FAST, flush_interval=60.0))
    for i in range(5):
        client.track("a", email="parent@example.com", details={"seq": i})
    # The child: its own queue and thread; inherited events discarded.
    _child_delivers(client)
    assert client.flush(10)
    seqs = sorted(_seqs(fast_emulator))
    assert seqs == [0, 1, 2, 3, 4, *range(100, 107)]  # each once


def test_child_of_a_fork_without_hooks_delivers(fast_emulator) -> None:
    """uWSGI's prefork forks in C and runs no `os.register_at_fork` hook by
    default: the per-event pid check still gives the child its own worker.

    In a fresh process whose only other thread is the client's idle worker
    (a C fork with more threads running, e.g. this test process's emulator,
    can leave the child's interpreter stuck, whatever the library does)."""
    script = textwrap.dedent(
        """
        import ctypes, os, signal, sys, bento_track
        client = bento_track.Client(
            **eval(sys.argv[1]), requests_per_minute=10_000, flush_interval=60.0
        )
        client.track("a", email="parent@example.com", details={"seq": 0})
        assert client.flush(10)  # the worker thread runs, now idle
        pid = ctypes.PyDLL(None).fork()  # PyDLL: the GIL stays held
        if pid == 0:
            signal.alarm(30)  # never outlive the test
            code = 1
            try:
                for i in range(7):
                    client.track("a", email="child@example.com", details={"seq": 100 + i})
                code = 0 if client.flush(10) and client.stats().sent == 7 else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    kwargs = repr(fast_emulator.client_kwargs())
    done = subprocess.run([sys.executable, "-c", script, kwargs], timeout=60)
    assert 0 == done.returncode
    assert sorted(_seqs(fast_emulator)) == [0, *range(100, 107)]


def test_one_clients_failing_fork_hook_spares_the_others(
    fast_emulator, clients
) -> None:
    """A queue backend whose `after_fork()` raises is logged; every client,
    that one included, still gets a fresh worker in the child."""

    class Broken(MemoryQueue):
        def after_fork(self) -> None:
            raise OSError("cannot reopen")

    broken = clients(**fast_emulator.client_kwargs(), **FAST, queue=Broken())
    client = clients(**fast_emulator.client_kwargs(), **FAST)
    for each in (broken, client):
        each.track("a", email="parent@example.com", details={"seq": 0})
        assert each.flush(10)
    _child_delivers(broken)
    _child_delivers(client)
    assert sorted(_seqs(fast_emulator)) == sorted([0, *range(100, 107)] * 2)


def test_bad_credentials_stop_sending_and_keep_events(
    emulator, clients, caplog
) -> None:
    kwargs = dict(emulator.client_kwargs(), secret_key="sk_wrong")
    client = clients(**kwargs, **FAST)
    with caplog.at_level(logging.ERROR, logger="bento_track"):
        for i in range(20):
            client.track("a", email="u@example.com", details={"seq": i})
        assert client.flush(5) is False
        client.track("a", email="u@example.com")
        assert client.flush(0.5) is False
    stats = client.stats()
    assert stats.auth_failed is True and stats.queue_depth == 21
    assert stats.requests == 1 and stats.sent == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "401" in errors[0].getMessage()
    assert "sk_wrong" not in errors[0].getMessage()


def test_sync_mode_sends_in_the_callers_thread(fast_emulator, clients) -> None:
    client = clients(**fast_emulator.client_kwargs(), **FAST, sync_mode=True)
    client.track("a", email="u@example.com", details={"seq": 1})
    assert _seqs(fast_emulator) == [1]  # no flush needed
    assert client._worker._thread is None  # no worker thread
    fast_emulator.inspect.fail_next(1, status=500)
    client.track("a", email="u@example.com", details={"seq": 2})  # retried inline
    assert sorted(_seqs(fast_emulator)) == [1, 2]
    assert client.stats().retried == 1


def test_batch_sent_signal_reports_bentos_counts(fast_emulator, clients) -> None:
    client = clients(**fast_emulator.client_kwargs(), **FAST)
    sent: list[tuple[int, int, int]] = []
    bento_track.signals.batch_sent.connect(
        recv := lambda s, **kw: sent.append(
            (len(kw["events"]), kw["accepted"], kw["failed"])
        ),
        sender=client,
    )
    for i in range(10):
        client.track("a", email="u@example.com", details={"seq": i})
    assert client.flush(5)
    bento_track.signals.batch_sent.disconnect(recv)
    assert sum(n for n, _, _ in sent) == 10
    assert all(n == accepted and failed == 0 for n, accepted, failed in sent)
    assert client.stats().last_success_at is not None


def test_exit_hook_flushes_within_shutdown_timeout(fast_emulator) -> None:
    script = textwrap.dedent(
        """
        import sys, bento_track
        bento_track.init(**eval(sys.argv[1]), flush_interval=60.0)
        for i in range(25):
            bento_track.track("a", email="exit@example.com", details={"seq": i})
        """
    )
    kwargs = repr(fast_emulator.client_kwargs())
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script, kwargs], check=True, timeout=30)
    assert time.monotonic() - started < 20
    assert sorted(_seqs(fast_emulator)) == list(range(25))


def test_exit_hook_reports_undelivered_and_never_hangs(fast_emulator) -> None:
    fast_emulator.inspect.slow_next(5, 30)
    script = textwrap.dedent(
        """
        import sys, bento_track
        bento_track.init(**eval(sys.argv[1]), shutdown_timeout=0.5)
        for i in range(3):
            bento_track.track("a", email="exit@example.com", details={"seq": i})
        """
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script, repr(fast_emulator.client_kwargs())],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0
    assert "3 events undelivered" in done.stderr
    assert time.monotonic() - started < 15


def test_dropped_connections_are_retried(fast_emulator, clients) -> None:
    clock = FakeClock(auto_advance=True)
    client = clients(**fast_emulator.client_kwargs(), **FAST, clock=clock)
    fast_emulator.inspect.drop_next(2)
    for i in range(30):
        client.track("a", email="u@example.com", details={"seq": i})
    assert client.flush(10) is True
    assert sorted(_seqs(fast_emulator)) == list(range(30))
    stats = client.stats()
    assert stats.retried == 2 and stats.dropped == {}
