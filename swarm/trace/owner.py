"""Which process owns a run, and whether it is still alive: what keeps `swarm resume` from running
a live run's tasks a second time.

A run records its owner (host, pid, and the process's start time, so a reused pid is not mistaken
for it) in the run's `meta`. On the same host, liveness is exact: the process with that pid and
start time exists. A run owned by another host cannot be checked from here; it counts as alive
until it is finished (`swarm resume --force` takes its tasks anyway). Leases renewed by heartbeat,
for workers on several machines sharing one PostgreSQL store, build on this.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

__all__ = ["OWNER_KEY", "describe_owner", "owner_alive", "process_owner"]

OWNER_KEY = "owner"
"""The key of the owner in a run's `meta`."""


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc/PID/stat, field 22), or
    None where /proc is not there."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 overall; fields[0] is field 3


def process_owner() -> dict[str, Any]:
    """This process as a run's owner: {"host", "pid", "started"}."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _start_time(pid)}


def owner_alive(owner: Any) -> bool:
    """Whether the process `owner` (as `process_owner()` made it) may still be running.

    True for an owner on another host (it cannot be checked from here); False for a malformed
    owner or none (runs recorded before owners were).
    """
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return False
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    started = owner.get("started")
    return started is None or _start_time(pid) == started


def describe_owner(owner: dict[str, Any]) -> str:
    return f"pid {owner.get('pid')} on {owner.get('host')}"
