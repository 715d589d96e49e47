"""Agents: the `Agent` base, the `@agent` decorator, the `Pack` a module exports, and the registry
with entry-point discovery."""

from swarm.agents.base import Agent, FunctionAgent, agent, check_agent
from swarm.agents.pack import Pack, load_pack
from swarm.agents.registry import (
    DEMO_ENTRY_POINT_GROUP,
    ENTRY_POINT_GROUP,
    AgentRegistry,
    agents_in,
    installed_demos,
    load_demo,
)

__all__ = [
    "DEMO_ENTRY_POINT_GROUP",
    "ENTRY_POINT_GROUP",
    "Agent",
    "AgentRegistry",
    "FunctionAgent",
    "Pack",
    "agent",
    "agents_in",
    "check_agent",
    "installed_demos",
    "load_demo",
    "load_pack",
]
