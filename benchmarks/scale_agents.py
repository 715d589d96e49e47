"""The agent of `benchmarks/scale.py`: waits `SCALE_IO_MS` (simulated I/O, asyncio.sleep), then
computes for `SCALE_CPU_MS` of CPU time (a busy loop holding the GIL, timed by the thread's CPU
clock so a machine shared with other jobs does not shorten it), and appends its task id to
`$SCALE_LOG` (one write: the benchmark counts executions from it)."""

import asyncio
import os
import time

from swarm import agent

IO_S = float(os.environ.get("SCALE_IO_MS", "20")) / 1000
CPU_S = float(os.environ.get("SCALE_CPU_MS", "2")) / 1000
_LOG = os.environ.get("SCALE_LOG")
_fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT) if _LOG else None


@agent(examples=["work"], max_concurrency=4096, timeout=60)
async def work(task, ctx):
    """Simulated I/O, then computation."""
    await asyncio.sleep(IO_S)
    end = time.thread_time() + CPU_S
    while time.thread_time() < end:
        pass
    if _fd is not None:
        os.write(_fd, f"{task.id}\n".encode())
    return None
