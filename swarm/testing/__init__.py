"""Test doubles that ship as public API: deterministic routers, a virtual clock, and (with the
router and LLM rooms) a hash encoder and a scripted LLM backend. Use them to test your own agents.
"""

from swarm.clock import VirtualClock
from swarm.testing.encoders import HashEncoder
from swarm.testing.llm import ScriptedLLM, call_tool
from swarm.testing.routers import FakeRouter, KeywordRouter, centroid_router

__all__ = [
    "FakeRouter",
    "HashEncoder",
    "KeywordRouter",
    "ScriptedLLM",
    "VirtualClock",
    "call_tool",
    "centroid_router",
]
