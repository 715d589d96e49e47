"""A real run of the example help desk on a SQLite file: tasks to give feedback on."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from swarm.agents import AgentRegistry
from swarm.models import Task
from swarm.swarm import Swarm
from swarm.testing import KeywordRouter
from swarm.trace import TraceStore
from swarm_examples import quickstart

AGENTS = ["accounts", "billing", "orders", "tech_support"]


@dataclass(frozen=True)
class Ran:
    order: str
    """Routed to orders by the keyword router (version "keyword")."""
    joke: str
    """Rejected: out of scope."""
    forced: str
    """Sent to billing without routing."""
    unrouted: str
    """Queued, never routed, no agent."""


def run_help_desk(db_url: str) -> Ran:
    """Route and run three requests with the keyword router, and queue one that is never routed."""

    async def go() -> tuple[str, str, str]:
        registry = AgentRegistry(quickstart.AGENTS)
        async with Swarm(registry, router=KeywordRouter(registry), db=db_url) as s:
            order = await s.run("where is my order")
            joke = await s.run("tell me a joke about cats")
            forced = await s.run("I was charged twice", agent="billing")
        assert (order.agent, joke.status.value, forced.agent) == ("orders", "rejected", "billing")
        return order.task_id, joke.task_id, forced.task_id

    order, joke, forced = asyncio.run(go())
    unrouted = Task(text="nobody routed me")
    with TraceStore(db_url, writer="thread") as store:
        store.task_queued(unrouted)
    return Ran(order, joke, forced, unrouted.id)
