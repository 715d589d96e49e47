"""Agents: the `Agent` base, the `@agent` decorator, and the registry with entry-point discovery."""

from swarm.agents.base import Agent, FunctionAgent, agent, check_agent
from swarm.agents.registry import ENTRY_POINT_GROUP, AgentRegistry, agents_in

__all__ = [
    "ENTRY_POINT_GROUP",
    "Agent",
    "AgentRegistry",
    "FunctionAgent",
    "agent",
    "agents_in",
    "check_agent",
]
