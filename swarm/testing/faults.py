"""Fault injection for reliability tests: an agent that fails on purpose, in the ways real agents
fail, so a test can check that every task still ends in a terminal state and nothing hangs.

    from swarm.testing.faults import FAULTS, FaultyAgent, fault_texts
    texts = fault_texts(10_000, fault_rate=0.1, seed=7)   # "ok 17", "raise 18", "hang 19", ...
    async with Swarm([FaultyAgent()], router=FakeRouter(default="faulty"), db=url) as swarm: ...

The fault is the first word of the task's text (or `payload["fault"]`):

| fault | what the agent does | the task must end |
| --- | --- | --- |
| `ok` | returns a small dict | done |
| `raise` | raises ValueError | failed |
| `hang` | sleeps far past its timeout | failed (timed out) |
| `swallow` | catches the timeout's cancellation and works on | failed (timed out) |
| `garbage` | returns an object that is not JSON | failed or done with a safe form |
| `unencodable` | returns text with a lone surrogate and a NUL | done, the value stored safely |
| `huge` | returns a 1 MB string | done |
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from swarm.agents.base import Agent
from swarm.models import Task

__all__ = ["FAULTS", "FaultyAgent", "fault_of", "fault_texts"]

FAULTS = ("raise", "hang", "swallow", "garbage", "unencodable", "huge")
"""Every fault FaultyAgent knows, besides `ok`."""


def fault_of(task: Task) -> str:
    """The fault a task asks for: `payload["fault"]`, else the first word of its text."""
    named = task.payload.get("fault") if isinstance(task.payload, dict) else None
    return str(named) if named else (task.text.split() or ["ok"])[0]


def fault_texts(n: int, *, fault_rate: float = 0.1, seed: int = 0) -> list[str]:
    """`n` task texts, `fault_rate` of them (rounded) naming a fault, spread at random by `seed`.
    Each text is unique (its index follows the fault), so every task can be told apart."""
    rng = random.Random(seed)
    faulty = set(rng.sample(range(n), round(n * fault_rate)))
    return [f"{rng.choice(FAULTS) if i in faulty else 'ok'} {i}" for i in range(n)]


class Unserialisable:
    """What the `garbage` fault returns: an object no JSON encoder takes."""

    def __repr__(self) -> str:
        return "<Unserialisable>"


class FaultyAgent(Agent):
    """An agent that fails as the task's text asks (see the module docstring).

    `timeout` (seconds) is short so that hangs end quickly; `hang_s` is how long a hang lasts, far
    past the timeout; `work_s` is how long an ordinary task works.
    """

    name = "faulty"
    description = "Does what the task says, including failing"
    examples = ["ok 1", "raise 2", "hang 3"]
    max_concurrency = 32
    timeout = 0.2
    retries = 0

    def __init__(self, *, hang_s: float = 30.0, work_s: float = 0.0) -> None:
        self.hang_s = hang_s
        self.work_s = work_s

    async def run(self, task: Task, ctx: Any) -> Any:
        fault = fault_of(task)
        if self.work_s:
            await asyncio.sleep(self.work_s)
        if fault == "raise":
            raise ValueError(f"injected failure in {task.text!r}")
        if fault == "hang":
            await asyncio.sleep(self.hang_s)
        if fault == "swallow":
            try:
                await asyncio.sleep(self.hang_s)
            except asyncio.CancelledError:
                await asyncio.sleep(self.timeout or 0.1)  # works on past its deadline
                return {"late": task.text}
        if fault == "garbage":
            return Unserialisable()
        if fault == "unencodable":
            return {"text": "half an emoji \ud83d and a NUL \x00", "key\udcff": 1}
        if fault == "huge":
            return "x" * 1_000_000
        return {"ok": task.text}
