"""swarm: many specialised agents behind one learned router, run by an asyncio scheduler that
records every step in a trace store.

The public names load on first use (PEP 562), so `import swarm` stays cheap for a process that
only routes: the scheduler, trace store, scenarios and LLM client are imported when touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from swarm.errors import (
    AgentDefinitionError,
    AgentError,
    AgentNotFound,
    ApprovalDecided,
    ArtifactError,
    BackendError,
    ConfigError,
    DataError,
    HandoffError,
    LLMStatusError,
    QueueFull,
    ReplayMissing,
    Retryable,
    RoutingRefused,
    RunError,
    ScenarioError,
    SchedulerClosed,
    StoreError,
    SwarmError,
    TaskNotFound,
    ToolError,
    UserError,
)

if TYPE_CHECKING:
    from swarm.agents import Agent, AgentRegistry, Pack, agent
    from swarm.clock import Clock, SystemClock
    from swarm.context import Context, Span
    from swarm.feedback import FeedbackRecord, record_feedback
    from swarm.llm import (
        LLM,
        ChatResponse,
        EndpointConfig,
        HTTPBackend,
        LLMAgent,
        Message,
        RecordingBackend,
        ReplayBackend,
        json_format,
    )
    from swarm.models import Decision, Handoff, Result, Task, TaskStatus
    from swarm.policies import RetryPolicy
    from swarm.router import Router, RoutingPolicy, TrainingData, load_serving_router
    from swarm.scenarios import (
        ScenarioRunner,
        Suite,
        TestReport,
        diff_runs,
        load_suites,
        replay_run,
    )
    from swarm.scheduler import Scheduler, TaskHandle
    from swarm.swarm import Swarm
    from swarm.tools import FileTool, HttpTool, ScriptTool, Tool, tool
    from swarm.trace import TraceStore

__version__ = "0.1.0"

_LAZY = {
    "Router": "swarm.router",
    "RoutingPolicy": "swarm.router",
    "TrainingData": "swarm.router",
    "load_serving_router": "swarm.router",
    "Agent": "swarm.agents",
    "AgentRegistry": "swarm.agents",
    "ChatResponse": "swarm.llm",
    "Clock": "swarm.clock",
    "Context": "swarm.context",
    "Decision": "swarm.models",
    "EndpointConfig": "swarm.llm",
    "FeedbackRecord": "swarm.feedback",
    "FileTool": "swarm.tools",
    "HTTPBackend": "swarm.llm",
    "Handoff": "swarm.models",
    "HttpTool": "swarm.tools",
    "LLM": "swarm.llm",
    "LLMAgent": "swarm.llm",
    "Message": "swarm.llm",
    "Pack": "swarm.agents",
    "RecordingBackend": "swarm.llm",
    "ReplayBackend": "swarm.llm",
    "Result": "swarm.models",
    "RetryPolicy": "swarm.policies",
    "ScenarioRunner": "swarm.scenarios",
    "Scheduler": "swarm.scheduler",
    "ScriptTool": "swarm.tools",
    "Span": "swarm.context",
    "Suite": "swarm.scenarios",
    "Swarm": "swarm.swarm",
    "SystemClock": "swarm.clock",
    "Task": "swarm.models",
    "TaskHandle": "swarm.scheduler",
    "TaskStatus": "swarm.models",
    "TestReport": "swarm.scenarios",
    "Tool": "swarm.tools",
    "TraceStore": "swarm.trace",
    "agent": "swarm.agents",
    "diff_runs": "swarm.scenarios",
    "json_format": "swarm.llm",
    "load_suites": "swarm.scenarios",
    "record_feedback": "swarm.feedback",
    "replay_run": "swarm.scenarios",
    "tool": "swarm.tools",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'swarm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Agent",
    "AgentDefinitionError",
    "AgentError",
    "AgentNotFound",
    "AgentRegistry",
    "ApprovalDecided",
    "ArtifactError",
    "BackendError",
    "ChatResponse",
    "Clock",
    "ConfigError",
    "Context",
    "DataError",
    "Decision",
    "EndpointConfig",
    "FeedbackRecord",
    "FileTool",
    "HTTPBackend",
    "Handoff",
    "HandoffError",
    "HttpTool",
    "LLM",
    "LLMAgent",
    "LLMStatusError",
    "Message",
    "Pack",
    "QueueFull",
    "RecordingBackend",
    "ReplayBackend",
    "ReplayMissing",
    "Result",
    "RetryPolicy",
    "Retryable",
    "Router",
    "RoutingPolicy",
    "RoutingRefused",
    "RunError",
    "ScenarioError",
    "ScenarioRunner",
    "Scheduler",
    "SchedulerClosed",
    "ScriptTool",
    "Span",
    "StoreError",
    "Suite",
    "Swarm",
    "SwarmError",
    "SystemClock",
    "Task",
    "TaskHandle",
    "TaskNotFound",
    "TaskStatus",
    "TestReport",
    "Tool",
    "ToolError",
    "TraceStore",
    "TrainingData",
    "UserError",
    "agent",
    "diff_runs",
    "json_format",
    "load_serving_router",
    "load_suites",
    "record_feedback",
    "replay_run",
    "tool",
]
