"""Agents the Ray tests run on the workers. Importable there as `remote_agents` (the cluster
fixture puts this folder on the workers' PYTHONPATH); side effects go to files and the sandbox
bank, which every process on this machine shares."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import ray

from swarm import Handoff, Retryable, agent
from swarm_examples.bank.db import Bank


def node_id() -> str:
    return str(ray.get_runtime_context().get_node_id())


# Tiny file writes, done in line (the tests read them): sync helpers, not worth a thread.
def write(path: str | Path, text: str) -> None:
    Path(path).write_text(text)


def append(path: str | Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line)


def bump(path: str | Path) -> int:
    """Add one to the count kept in `path`; the new count."""
    n = int(Path(path).read_text()) + 1 if Path(path).exists() else 1
    Path(path).write_text(str(n))
    return n


def lookup(customer: str) -> dict[str, str]:
    return {"customer": customer, "pid": str(os.getpid())}


@agent(timeout=30)
async def where(task, ctx):
    """Says which node and process it ran on, inside a span and through a tool."""
    async with ctx.span("tool", "remote-step", note="opened on the worker") as span:
        found = await ctx.tool(lookup, customer="C001")
        span.set(found=found)
    return {"node": node_id(), "pid": os.getpid(), "attempt": ctx.attempt}


@agent(timeout=1.0)
async def sleepy(task, ctx):
    """Sleeps far past its timeout; records, on the worker, that it was cancelled."""
    async with ctx.span("tool", "nap"):
        try:
            await asyncio.sleep(task.payload.get("nap", 60))
        except asyncio.CancelledError:
            write(task.payload["marker"], f"cancelled on {node_id()}")
            raise
    return "woke up"


@agent(timeout=30)
async def child(task, ctx):
    return {"text": task.text, "node": node_id(), "parent": task.parent}


@agent(timeout=30)
async def parent(task, ctx):
    """Delegates twice at once from the worker; the scheduler runs the children."""
    a, b = await asyncio.gather(
        ctx.delegate("first", agent="child"), ctx.delegate("second", agent="child")
    )
    return {"children": [a.output, b.output], "node": node_id()}


@agent(timeout=30)
async def passer(task, ctx):
    return Handoff("child", reason="the child knows")


@agent(timeout=30, retries=2)
async def flaky(task, ctx):
    """Fails its first attempt with a retryable error (counted in a file)."""
    n = bump(task.payload["tries"])
    if n == 1:
        raise Retryable("first try fails")
    return n


@agent(timeout=60, max_concurrency=16)
async def top_up(task, ctx):
    """Tops up C001 by 1.00 (once per task id: the bank's idempotency key), writes a ledger line
    per body, then waits: a node killed during the wait loses a body whose effect is done."""
    bank: Bank = ctx.services["bank"]
    done = await asyncio.to_thread(bank.top_up, task.id, "C001", 100)
    append(task.payload["ledger"], f"{task.id} {node_id()} {done['repeated']}\n")
    await asyncio.sleep(task.payload.get("wait", 0))
    return {"node": node_id(), "repeated": done["repeated"]}


@agent(timeout=30)
async def asks(task, ctx):
    """Asks a person from the worker, and says what it is doing on the way."""
    ctx.publish("progress", {"step": "asking", "node": node_id()})
    approved = await ctx.approve("refund 1.00?", details={"amount": 1})
    return {"approved": approved, "node": node_id()}


@agent(timeout=30)
async def talker(task, ctx):
    """Asks the swarm's LLM from the worker: a copy of the client, bound to the remote context."""
    reply = await ctx.llm.chat([task.text])
    return {"reply": reply.content, "node": node_id()}
