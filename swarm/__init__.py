"""swarm: many specialised agents behind one learned router, run by an asyncio scheduler that
records every step in a trace store.
"""

from swarm.agents import Agent, AgentRegistry, agent
from swarm.clock import Clock, SystemClock
from swarm.context import Context, Span
from swarm.errors import (
    AgentDefinitionError,
    AgentError,
    AgentNotFound,
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
from swarm.scenarios import ScenarioRunner, Suite, TestReport, diff_runs, load_suites, replay_run
from swarm.scheduler import Scheduler, TaskHandle
from swarm.swarm import Swarm
from swarm.tools import FileTool, HttpTool, ScriptTool, Tool, tool
from swarm.trace import TraceStore

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentDefinitionError",
    "AgentError",
    "AgentNotFound",
    "AgentRegistry",
    "ArtifactError",
    "BackendError",
    "ChatResponse",
    "Clock",
    "ConfigError",
    "Context",
    "DataError",
    "Decision",
    "EndpointConfig",
    "FileTool",
    "HTTPBackend",
    "Handoff",
    "HandoffError",
    "HttpTool",
    "LLM",
    "LLMAgent",
    "LLMStatusError",
    "Message",
    "QueueFull",
    "RecordingBackend",
    "ReplayBackend",
    "ReplayMissing",
    "Result",
    "RetryPolicy",
    "Retryable",
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
    "UserError",
    "agent",
    "diff_runs",
    "json_format",
    "load_suites",
    "replay_run",
    "tool",
]
