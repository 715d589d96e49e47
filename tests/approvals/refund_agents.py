"""The agents of the approval tests (also loaded by `swarm run`/`swarm resume` as
`--agents refund_agents`): a refund desk that looks the payment up, asks a person, then refunds.
Each tool execution is counted in `executions`, and appended to $SIDE_EFFECTS_LOG when set, so a
test sees how many times it really ran, across processes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from swarm import agent

executions: list[str] = []


def _executed(line: str) -> None:
    executions.append(line)
    log = os.environ.get("SIDE_EFFECTS_LOG")
    if log:
        with Path(log).open("a") as f:
            f.write(f"{line}\n")


def _charge(amount: float) -> dict[str, Any]:
    _executed(f"charge {amount}")
    return {"charged": amount}


def _refund(amount: float) -> dict[str, Any]:
    _executed(f"refund {amount}")
    return {"refunded": amount}


@agent(max_concurrency=1, examples=["refund my order"])
async def refunds(task, ctx):
    """Refunds: a look-up before the approval, the refund after it."""
    amount = float(task.payload.get("amount", 120))
    await ctx.tool(_charge, amount=amount)
    timeout = task.payload.get("approval_timeout")
    if not await ctx.approve(
        f"refund {amount:.2f} to card ending 4821?", timeout=timeout, details={"amount": amount}
    ):
        return {"approved": False}
    return {"approved": True, "refund": await ctx.tool(_refund, amount=amount)}


@agent(examples=["check the card"])
async def checker(task, ctx):
    """Checks a card (a child task of `careful`)."""
    _executed(f"check {task.payload.get('card')}")
    return {"card": task.payload.get("card"), "status": "active"}


@agent(examples=["careful refund"])
async def careful(task, ctx):
    """Asks the card desk first (a child task), then a person, then refunds."""
    check = await ctx.delegate("check the card", agent="checker", payload={"card": "4821"})
    if not await ctx.approve("refund to an active card?", details={"check": check.output}):
        return {"approved": False}
    return {"approved": True, "check": check.output, "refund": await ctx.tool(_refund, amount=5)}
