"""The one error tree of swarm: what a user got wrong apart from what went wrong while running.

SwarmError
├── UserError                  the input is wrong; the message names file, line or field
│   ├── ConfigError            bad settings, a bad URL, an unknown option
│   ├── AgentDefinitionError   an agent that cannot be registered (duplicate, no run, bad signature)
│   ├── AgentNotFound          a name that no registered agent has
│   ├── TaskNotFound           a task id that the trace store does not hold
│   ├── ApprovalDecided        a decision on an approval that is decided already (it is final)
│   ├── DataError              a labelled file or data set that cannot be read
│   ├── ScenarioError          a scenario file that does not parse or validate
│   └── ArtifactError          a router artifact that is missing, partial, corrupt or mismatched
└── RunError                   something failed while running
    ├── AgentError             an agent raised, timed out or returned something unusable
    │   └── Retryable          raised by an agent: this failure may pass, try again
    ├── HandoffError           a handoff loop or too many hops
    ├── RoutingRefused         the router said no agent should take the task
    ├── SchedulerClosed        a task was submitted to a scheduler that is shutting down
    ├── QueueFull              submit_nowait() on a full queue
    ├── BackendError           an LLM or tool backend failed
    │   ├── LLMStatusError     the LLM endpoint answered 4xx/5xx (`.status_code`), after retries
    │   ├── ReplayMissing      a replayed run made an LLM request that has no recording
    │   └── ToolError          a tool refused its arguments (a guard) or could not finish
    │       └── ReplayedError  a recorded failure whose own class could not be rebuilt
    └── StoreError             the trace store could not be written or read
"""

from __future__ import annotations

__all__ = [
    "AgentDefinitionError",
    "AgentError",
    "AgentNotFound",
    "ApprovalDecided",
    "ArtifactError",
    "BackendError",
    "ConfigError",
    "DataError",
    "HandoffError",
    "LLMStatusError",
    "QueueFull",
    "ReplayMissing",
    "ReplayedError",
    "Retryable",
    "RoutingRefused",
    "RunError",
    "ScenarioError",
    "SchedulerClosed",
    "StoreError",
    "SwarmError",
    "TaskNotFound",
    "ToolError",
    "UserError",
]


class SwarmError(Exception):
    """Base of every error swarm raises on purpose."""


class UserError(SwarmError):
    """The input is wrong; the message says where and what was expected."""


class ConfigError(UserError):
    pass


class AgentDefinitionError(UserError):
    pass


class AgentNotFound(UserError):
    pass


class TaskNotFound(UserError):
    pass


class ApprovalDecided(UserError):
    """A person decided an approval that was decided already, expired or withdrawn: the first
    decision is final. `approval` is the stored row as it stands."""

    def __init__(self, message: str, *, approval: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.approval = approval or {}


class DataError(UserError):
    pass


class ScenarioError(UserError):
    pass


class ArtifactError(UserError):
    pass


class RunError(SwarmError):
    """Something failed while running."""


class AgentError(RunError):
    pass


class Retryable(AgentError):
    """Raise it (or a subclass) from an agent to ask for another attempt with backoff."""


class HandoffError(RunError):
    pass


class RoutingRefused(RunError):
    pass


class SchedulerClosed(RunError):
    pass


class QueueFull(RunError):
    pass


class BackendError(RunError):
    pass


class LLMStatusError(BackendError):
    """The endpoint answered with an error status; retryable ones (429, 5xx) only after retries."""

    def __init__(self, message: str, *, status_code: int, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class ReplayMissing(BackendError):
    """Replay found no recording for a request; the message names model, first message and hash."""

    def __init__(self, message: str, *, request_hash: str) -> None:
        super().__init__(message)
        self.request_hash = request_hash


class ToolError(BackendError):
    """A tool refused its arguments or failed; an `LLMAgent` shows the message to the model."""


class ReplayedError(ToolError):
    """A failure served back by a replay whose recorded class could not be rebuilt here;
    `original` names that class (`module:qualname`), and the message is the recorded one."""

    def __init__(self, message: str, *, original: str = "") -> None:
        super().__init__(message)
        self.original = original


class StoreError(RunError):
    pass

