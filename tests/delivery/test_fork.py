"""A fork never leaves the child a broken client (issue 17, item 2).

gunicorn `--preload` forks workers from a master whose delivery thread may be
in its very first send. Had that send imported anything (httpx imports its
transport lazily), the child would inherit a half-initialized module and
never send. Each scenario runs in a fresh interpreter that has imported only
bento_track (this process has imported far more), against the session's
emulator over loopback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ..helpers import budget, wait_until
from ..support.processes import last_json, run_script

#: Import bento_track, then make a first send in each way it can go (a 5xx,
#: a 429, a 2xx; with the memory and the SQLite store; a refused connection,
#: TLS to a closed port) and print the modules those sends imported, the SSL
#: contexts a delivery thread made (OpenSSL holds process-wide locks while it
#: makes one: a fork then leaves the child's OpenSSL locked), and whether
#: each flush delivered and how many requests it made.
FIRST_SENDS = """
import json, sys, threading
import bento_track

imported = set(sys.modules)
contexts = []  # SSL contexts made in a delivery thread


def profile(frame, event, arg):
    code = frame.f_code
    if (
        event == "call" and code.co_name == "__new__"
        and code.co_filename.endswith("ssl.py")
        and threading.current_thread().name == "bento_track.worker"
    ):
        contexts.append(code.co_filename)


threading.setprofile(profile)  # every thread started from now on
kwargs, db = json.loads(sys.argv[1]), sys.argv[2]
cases = [  # (options, flush timeout)
    (dict(kwargs), 30.0),
    (dict(kwargs, store="sqlite:///" + db), 30.0),
    (dict(kwargs, base_url="http://127.0.0.1:9"), 2.0),  # refused
    (dict(kwargs, base_url="https://127.0.0.1:9"), 2.0),  # SSL context, refused
]
results = []
for options, timeout in cases:
    client = bento_track.Client(retry_base_delay=0.01, **options)
    client.track("first.send", email="fork@example.com")
    flushed = client.flush(timeout)
    results.append([flushed, client.stats().requests])
    client.shutdown(0.5)
new = sorted(set(sys.modules) - imported)
print(json.dumps({"new": new, "results": results, "contexts": contexts}))
"""


def test_a_first_send_imports_nothing_and_makes_no_ssl_context(
    emulator: Any, tmp_path: Any
) -> None:
    # The first client's first request gets a 500 and its retry a 429, so
    # the retry and pause paths run too.
    emulator.inspect.fail_next(1, status=500)
    emulator.inspect.rate_limit_storm(1, retry_after=1)
    done = run_script(
        FIRST_SENDS, json.dumps(emulator.client_kwargs()), tmp_path / "first.db"
    )
    out = last_json(done.stdout)
    flushed = [ok for ok, _ in out["results"]]
    requests = [n for _, n in out["results"]]
    assert flushed == [True, True, False, False], done.stderr
    assert requests[0] == 3 and min(requests) >= 1, out  # every case sent
    assert out["new"] == [], (
        "a first send imported modules that `import bento_track` had not; "
        "import them in bento_track/_delivery/sender.py"
    )
    assert out["contexts"] == [], "a delivery thread made an SSL context"
    assert len(emulator.inspect.events()) == 2


#: Make a client on a store (memory, SQLite, Redis) in the main thread, as a
#: gunicorn master does, then track, flush, read `stats()` (the Redis store
#: reads in a thread of its own) and shut down, and print every module a
#: thread of bento_track imported: a fork while such a thread is half-way
#: through an import leaves the child that module half-initialized (redis-py
#: reads its own version through importlib.metadata, which imports
#: `email.message` and more, the first time a connection is made).
THREADS_IMPORT = """
import json, sys, threading
import bento_track

imported_in_threads = []


def record(event, args):
    if event == "import" and threading.current_thread().name.startswith(
        "bento_track."
    ):
        imported_in_threads.append(args[0])


kwargs = json.loads(sys.argv[1])
client = bento_track.Client(**kwargs)
sys.addaudithook(record)
client.track("first.send", email="fork@example.com")
flushed = client.flush(30)
client.stats()
left = client.shutdown(5)
print(json.dumps({"flushed": flushed, "left": left,
                  "imported": sorted(set(imported_in_threads))}))
"""


@pytest.mark.parametrize("store", ["memory", "sqlite", "redis"])
def test_no_thread_of_the_library_imports_anything(
    emulator: Any, store: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    # A budget of one second's window: a new Redis namespace on a server up
    # for less than a window counts the window spent (the store's cold start).
    kwargs = budget(emulator, 1000, 1.0)
    if store == "sqlite":
        kwargs["store"] = f"sqlite:///{tmp_path / 'first.db'}"
    elif store == "redis":
        kwargs["store"] = request.getfixturevalue("redis_url")
    done = run_script(THREADS_IMPORT, json.dumps(kwargs))
    out = last_json(done.stdout)
    assert out["flushed"] and out["left"] == 0, done.stderr
    assert out["imported"] == [], (
        "a thread of bento_track imported modules; import them where the "
        "client or its store is made"
    )


#: The parent's delivery thread is stopped inside its very first send, at the
#: first point where a fork could hurt: an import made while another module
#: is half-initialized (what httpx's lazy import of httpcore did), or else
#: the connection to Bento. The main thread forks right then. The child
#: tracks and flushes its own events; the parent is then let go and delivers
#: its own. The parent prints one JSON line with both sides' results.
FORK_IN_FIRST_SEND = """
import json, os, sys, threading
import bento_track

kwargs = json.loads(sys.argv[1])
in_send = threading.Event()
forked = threading.Event()
paused_at = []


def half_initialized():
    return [
        name for name, module in list(sys.modules.items())
        if getattr(getattr(module, "__spec__", None), "_initializing", False)
    ]


def hold_first_send(event, args):
    if paused_at or threading.current_thread().name != "bento_track.worker":
        return
    if event == "import" and half_initialized():
        paused_at.append(f"import {args[0]} in {half_initialized()}")
    elif event == "socket.connect":
        paused_at.append("socket.connect")
    else:
        return
    in_send.set()
    forked.wait(60)


sys.addaudithook(hold_first_send)
client = bento_track.Client(**kwargs)
client.track("parent.before_fork", email="parent@example.com")
assert in_send.wait(60), "the delivery thread never reached its first send"
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    code = 1
    try:
        os.close(read_end)
        for seq in range(5):
            client.track("child.event", email="child@example.com",
                         details={"seq": seq, "pid": os.getpid()})
        flushed = client.flush(30)
        left = client.shutdown(5)
        stats = client.stats()
        report = {"flushed": flushed, "left": left, "sent": stats.sent,
                  "dropped": stats.dropped, "last_error": stats.last_error}
        os.write(write_end, json.dumps(report).encode())
        code = 0
    finally:
        os._exit(code)
os.close(write_end)
forked.set()
client.track("parent.after_fork", email="parent@example.com")
flushed = client.flush(30)
with os.fdopen(read_end) as pipe:
    child = json.loads(pipe.read() or "null")
_, status = os.waitpid(pid, 0)
print(json.dumps({"paused_at": paused_at, "child": child,
                  "child_status": status, "parent_flushed": flushed,
                  "parent_sent": client.stats().sent}))
client.shutdown(5)
"""


def test_a_child_forked_during_the_parents_first_send_delivers(
    emulator: Any,
) -> None:
    done = run_script(FORK_IN_FIRST_SEND, json.dumps(emulator.client_kwargs()))
    out = last_json(done.stdout)
    # The fork came inside the first send, and no import was under way then.
    assert out["paused_at"] == ["socket.connect"], done.stderr
    child = out["child"]
    assert out["child_status"] == 0 and child is not None, done.stderr
    assert child["flushed"] and child["left"] == 0, (child, done.stderr)
    assert child["sent"] == 5 and child["dropped"] == {}, child
    assert out["parent_flushed"] and out["parent_sent"] == 2, done.stderr
    events = emulator.inspect.events()
    types = sorted(e["type"] for e in events)
    # Each side delivered its own events, once: the child did not send the
    # parent's event it inherited, and the parent did not lose it.
    assert types == ["child.event"] * 5 + [
        "parent.after_fork",
        "parent.before_fork",
    ]
    assert sorted(
        e["details"]["seq"] for e in events if e["type"] == "child.event"
    ) == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert "delivery worker error" not in done.stderr


#: A process whose delivery is broken the way issue 17's children were: its
#: `httpcore` is a module left half-initialized, so every send raises an
#: AttributeError. With `fork`, the broken one is a forked child and the
#: parent delivers its own events meanwhile. Prints the broken process's
#: figures as JSON.
BROKEN = """
import importlib.util, json, logging, os, sys, types
import bento_track

logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(message)s")
kwargs, fork = json.loads(sys.argv[1]), sys.argv[2] == "fork"


def break_httpcore():
    half = types.ModuleType("httpcore")
    half.__spec__ = importlib.util.spec_from_loader("httpcore", loader=None)
    half.__spec__._initializing = True
    sys.modules["httpcore"] = half


def run_broken(client):
    break_httpcore()
    for seq in range(5):
        client.track("broken.event", email="b@example.com", details={"seq": seq})
    flushed = client.flush(30)
    # Captured once delivery is known to be broken.
    for seq in range(5, 7):
        client.track("broken.event", email="b@example.com", details={"seq": seq})
    left = client.shutdown(5)
    stats = client.stats()
    return {"flushed": flushed, "left": left, "sent": stats.sent,
            "dropped": stats.dropped, "last_error": stats.last_error}


client = bento_track.Client(retry_base_delay=0.01, **kwargs)
if not fork:
    print(json.dumps(run_broken(client)))
    sys.exit(0)
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    code = 1
    try:
        os.close(read_end)
        os.write(write_end, json.dumps(run_broken(client)).encode())
        code = 0
    finally:
        os._exit(code)
os.close(write_end)
with os.fdopen(read_end) as pipe:
    child = json.loads(pipe.read() or "null")
_, status = os.waitpid(pid, 0)
client.track("parent.event", email="p@example.com")
child["parent_flushed"] = client.flush(30)
client.shutdown(5)
print(json.dumps(child))
"""


def test_a_child_with_broken_delivery_says_so_once_and_counts_its_events_lost(
    emulator: Any,
) -> None:
    done = run_script(BROKEN, json.dumps(emulator.client_kwargs()), "fork")
    child = last_json(done.stdout)
    log = done.stderr
    assert child["sent"] == 0 and child["left"] == 0, (child, log)
    # Every event of the child, those captured after the error too.
    assert child["dropped"] == {"broken": 7}, (child, log)
    assert "partially initialized module 'httpcore'" in child["last_error"]
    # Said once when found, naming the cause, and once at exit; no stream
    # of "worker error" tracebacks.
    found = [line for line in log.splitlines() if "is broken: sending raised" in line]
    assert len(found) == 1, log
    assert found[0].startswith("ERROR ") and "AttributeError" in found[0], log
    assert "its events are dropped" in found[0]
    assert log.count("shut down with 7 events lost") == 1, log
    assert "delivery worker error" not in log
    # The parent was not affected; the child's events never went out.
    assert child["parent_flushed"], log
    assert [e["type"] for e in emulator.inspect.events()] == ["parent.event"]


def test_broken_delivery_leaves_a_durable_stores_events_for_the_next_process(
    emulator: Any, tmp_path: Any, clients: Any
) -> None:
    store = f"sqlite:///{tmp_path / 'broken.db'}"
    kwargs = dict(emulator.client_kwargs(), store=store)
    done = run_script(BROKEN, json.dumps(kwargs), "alone")
    broken = last_json(done.stdout)
    log = done.stderr
    assert broken["sent"] == 0 and broken["dropped"] == {}, (broken, log)
    assert not broken["flushed"] and broken["left"] == 7, (broken, log)
    found = [line for line in log.splitlines() if "is broken: sending raised" in line]
    assert len(found) == 1 and "events wait in the store" in found[0], log
    # The exit message says why, and where the 7 events wait.
    exit_lines = [line for line in log.splitlines() if "shut down with" in line]
    assert len(exit_lines) == 1, log
    assert "7 events undelivered" in exit_lines[0], log
    assert "in this process is broken" in exit_lines[0], log
    assert "wait in the store" in exit_lines[0], log
    assert emulator.inspect.events() == []
    # The next process on the store delivers them, each once.
    clients(**kwargs)
    wait_until(lambda: len(emulator.inspect.events()) >= 7, 30)
    assert sorted(e["details"]["seq"] for e in emulator.inspect.events()) == list(
        range(7)
    )
