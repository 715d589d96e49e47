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
    QueueFull,
    Retryable,
    RoutingRefused,
    RunError,
    ScenarioError,
    SchedulerClosed,
    StoreError,
    SwarmError,
    TaskNotFound,
    UserError,
)
from swarm.models import Decision, Handoff, Result, Task, TaskStatus
from swarm.policies import RetryPolicy
from swarm.scenarios import ScenarioRunner, Suite, TestReport, diff_runs, load_suites, replay_run
from swarm.scheduler import Scheduler, TaskHandle
from swarm.swarm import Swarm
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
    "Clock",
    "ConfigError",
    "Context",
    "DataError",
    "Decision",
    "Handoff",
    "HandoffError",
    "QueueFull",
    "Result",
    "RetryPolicy",
    "Retryable",
    "RoutingRefused",
    "RunError",
    "ScenarioError",
    "ScenarioRunner",
    "Scheduler",
    "SchedulerClosed",
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
    "TraceStore",
    "UserError",
    "agent",
    "diff_runs",
    "load_suites",
    "replay_run",
]
