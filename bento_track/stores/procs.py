"""Who holds a lease, and whether it is still alive.

A durable store names each process that uses it by host and pid *and* the
process's start time: pids are reused, and a store outlives the processes
that wrote it. Another process on the same host can then tell at once that a
holder died (no such pid, or a pid with another start time) and take its
work over; a holder elsewhere (another container, another boot) can only be
presumed dead when its lease times out.
"""

from __future__ import annotations

import os
import socket

__all__ = ["host_id", "is_alive", "start_time"]

_host: str | None = None


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def host_id() -> str:
    """This host as pids see it: host name, boot id and pid namespace.

    Two processes with the same `host_id` can check each other's pids; the
    boot id tells a reboot apart (pids start over), the pid namespace tells
    containers with a shared host name and volume apart.
    """
    global _host
    if _host is None:
        try:
            ns = str(os.stat("/proc/self/ns/pid").st_ino)
        except OSError:
            ns = ""
        boot = _read("/proc/sys/kernel/random/boot_id")
        _host = f"{socket.gethostname()}/{boot}/{ns}"
    return _host


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux: field 22 of
    /proc/PID/stat), or None where that cannot be read."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    # The command name (field 2) may hold spaces and parentheses: count the
    # fields after its closing parenthesis (field 3 onwards).
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return int(rest[22 - 3])
    except (IndexError, ValueError):
        return None


def is_alive(pid: int, started: int | None) -> bool:
    """Whether the process `pid` that started at `started` (its `start_time`
    then) still runs on this host. A zombie counts as dead: it holds nothing."""
    if started is not None and os.path.isdir("/proc"):
        now = start_time(pid)
        if now is None or now != started:
            return False
        state = _read(f"/proc/{pid}/stat")
        state = state[state.rfind(")") + 2 :][:1]
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True
