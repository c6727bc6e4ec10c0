"""Small programs the multi-process suites run in child processes
(`start_script`, `run_script`): argv is the store URL, then the client's
options as JSON."""

import textwrap


def busy_until_killed(calls: str) -> str:
    """A program that makes `calls` (statements of `client` and `i`) for
    i = 0, 1, 2... until it is killed, printing "i time" (`time.monotonic()`)
    after every 50th: the last call that returned, and when (a busy app:
    up to 10,000 calls a second). For `killed_while_running`."""
    return f"""
import json, sys, threading, time, bento_track
url, kwargs = sys.argv[1], json.loads(sys.argv[2])
client = bento_track.Client(store=url, **kwargs)
tick = threading.Event()
i = 0
while True:
{textwrap.indent(textwrap.dedent(calls).strip(), "    ")}
    if i % 50 == 49:
        print(i, time.monotonic(), flush=True)
        tick.wait(0.005)
    i += 1
"""


#: tracks events 0-299 and exits; prints {"left": what shutdown() left}
LEAVE = """
import json, sys, bento_track
client = bento_track.Client(store=sys.argv[1], **json.loads(sys.argv[2]))
for i in range(300):
    client.track("a", email="left@example.com", details={"seq": i})
print(json.dumps({"left": client.shutdown()}))
"""

#: a new process on the store that tracks nothing and delivers what is
#: there; prints its store's figures once the store is empty (or at 90 s)
DRAIN = """
import json, sys, threading, time, bento_track
url, kwargs = sys.argv[1], json.loads(sys.argv[2])
client = bento_track.Client(store=url, **kwargs)
deadline, tick = time.monotonic() + 90, threading.Event()
def store_figures():
    # Redis's are read in the background: `stale` until a reading came back.
    while True:
        store = client.stats().store
        if not store.stale or time.monotonic() > deadline:
            return store
        tick.wait(0.05)
while store_figures().depth and time.monotonic() < deadline:
    tick.wait(0.05)
store = store_figures()
print(json.dumps({"ok": store.depth == 0, "depth": store.depth,
                  "reclaimed": store.reclaimed, "sent": client.stats().sent}))
"""
