"""The resume_live case's agent (from ../shared/cases/resume_live): each execution appends one
line to $SIDE_EFFECTS_LOG, a side effect that must happen once per task."""

import asyncio
import os
from pathlib import Path

from swarm import agent


@agent(examples=["send invoice"], timeout=30)
async def invoices(task, ctx):
    """Sends an invoice (logged once per execution)."""
    await asyncio.sleep(float(os.environ.get("WORK_S", "1")))
    with Path(os.environ["SIDE_EFFECTS_LOG"]).open("a") as f:  # noqa: ASYNC230 - a tiny append
        f.write(f"{task.text}\t{task.id}\t{os.getpid()}\n")
    return f"sent {task.text}"
