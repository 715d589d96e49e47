"""Agents for the worker tests: each execution appends one line to $SIDE_EFFECTS_LOG (task text,
task id, pid, wall-clock start and end), a side effect that must happen once per task."""

import asyncio
import os
import time

from swarm import agent


@agent(examples=["send invoice"], timeout=60, max_concurrency=64)
async def invoices(task, ctx):
    """Sends an invoice (logged once per execution)."""
    started = time.time()
    await asyncio.sleep(float(os.environ.get("WORK_S", "0.5")))
    line = f"{task.text}\t{task.id}\t{os.getpid()}\t{started:.3f}\t{time.time():.3f}\n"
    # One write(2) with O_APPEND: lines from several processes never interleave.
    fd = os.open(os.environ["SIDE_EFFECTS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return f"sent {task.text}"


@agent(examples=["count words"], timeout=60)
async def words(task, ctx):
    """Counts the words of the task (no side effect)."""
    return len(task.text.split())
