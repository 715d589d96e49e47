"""The JSON shapes of `swarm serve`'s API, as pydantic models: they validate requests (a bad field
is a 422 that names it) and document every route in `/openapi.json`.

Rows come from the trace store as they are stored (`swarm.trace.schema`); times are seconds since
the epoch (floats), durations milliseconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Agent",
    "AgentList",
    "Approval",
    "ApprovalDecision",
    "ApprovalList",
    "AuthInfo",
    "DecisionInfo",
    "ErrorBody",
    "FeedbackRequest",
    "FeedbackStored",
    "FieldError",
    "Neighbour",
    "RouterMetrics",
    "Run",
    "RunList",
    "Span",
    "SubmitRequest",
    "Submitted",
    "TaskDetail",
    "TaskList",
    "TaskRow",
    "TaskTree",
    "Version",
    "VersionList",
    "VersionUsed",
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored


# ---- requests ----------------------------------------------------------------------------------


class SubmitRequest(_Request):
    """A task for the swarm: routed by the router, or sent to `agent` when given."""

    text: str = Field(min_length=1, description="What the task asks, in words.")
    agent: str | None = Field(None, description="Skip routing: send the task to this agent.")
    payload: dict[str, Any] = Field(default_factory=dict, description="Structured input.")
    session: str | None = Field(None, max_length=64, description="Conversation id.")
    priority: int = Field(0, description="Higher runs first when agents are busy.")


class FeedbackRequest(_Request):
    """A person's verdict on a routing: `good`, `bad`, or (with `agent`) where it belonged."""

    verdict: Literal["good", "bad"] | None = Field(
        None, description="good or bad; omitted with `agent`: a correction."
    )
    agent: str | None = Field(
        None, description="The agent that should have taken it (`oos`: none should)."
    )
    note: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackRequest:
        if self.verdict is None and self.agent is None:
            raise ValueError("give a verdict (good or bad) or the agent the task belonged to")
        return self


class ApprovalDecision(_Request):
    approve: bool = Field(description="true approves, false denies.")
    note: str | None = Field(None, max_length=2000)
    by: str | None = Field(None, max_length=128, description="Who decided (default: api).")


# ---- responses ---------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str = Field(description="The field at fault: `text`, `limit`, `payload.card` ...")
    location: str = Field(description="body, query or path")
    message: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer: `detail` says what was wrong, in words."""

    detail: str
    errors: list[FieldError] | None = None


class AuthInfo(BaseModel):
    required: bool = Field(description="Whether /v1 routes need `Authorization: Bearer TOKEN`.")


class Submitted(BaseModel):
    id: str
    status: str


class TaskRow(BaseModel):
    """A task as the trace store holds it."""

    id: str
    run_id: str | None = None
    parent_id: str | None = None
    session_id: str | None = None
    text: str
    payload: dict[str, Any] | None = None
    priority: int = 0
    deadline: float | None = None
    forced_agent: str | None = None
    status: str = Field(description="queued, running, waiting, done, failed, cancelled, rejected")
    agent: str | None = None
    attempts: int = 0
    hops: list[Any] | None = None
    output: Any = None
    error: str | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None


class TaskList(BaseModel):
    tasks: list[TaskRow]


class Neighbour(BaseModel):
    """A training example near the task's text (cosine `similarity`), and its label."""

    text: str
    agent: str
    similarity: float


class DecisionInfo(BaseModel):
    agent: str | None
    status: str = Field(description="routed, out_of_scope, ambiguous or forced")
    confidence: float
    rule: str | None = None
    candidates: list[tuple[str, float]] = Field(description="[[agent, probability], ...]")
    router_version: str | None = None
    latency_ms: float = 0.0
    neighbours: list[Neighbour] = Field(
        default_factory=list,
        description="The nearest training examples, when the router that decided still serves "
        "and keeps examples; else empty.",
    )


class TaskDetail(TaskRow):
    decision: DecisionInfo | None = None


class Span(BaseModel):
    id: str
    task_id: str
    run_id: str | None = None
    parent_id: str | None = None
    kind: str
    name: str
    started_at: float
    ended_at: float | None = None
    status: str
    error: str | None = None
    attributes: dict[str, Any] | None = None


class TaskTree(TaskRow):
    decision: DecisionInfo | None = None
    spans: list[Span]
    children: list[TaskTree]


class Run(BaseModel):
    id: str
    kind: str
    agents: str | None = None
    router: str | None = None
    router_version: str | None = None
    started_at: float
    finished_at: float | None = None
    meta: dict[str, Any] | None = None
    tasks: int = Field(0, description="Its root tasks.")


class RunList(BaseModel):
    runs: list[Run]


class FeedbackStored(BaseModel):
    id: int
    task_id: str
    kind: str = Field(description="good, bad or correction")
    agent: str | None
    routed_agent: str | None
    text: str
    router_version: str | None
    note: str | None


class Version(BaseModel):
    """A saved router version (see `swarm router versions`)."""

    version: str
    serving: bool = Field(description="CURRENT names it.")
    created_at: str | None = None
    agents: list[str] = Field(default_factory=list)
    parent: str | None = None
    compared_with: str | None = None
    promotion: dict[str, Any] | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    accuracy: float | None = None
    measured_on: dict[str, Any] | None = None


class VersionList(BaseModel):
    serving: str | None = Field(description="The version CURRENT names in the models folder.")
    routing: str = Field(description="The version of the router that routes this server's tasks.")
    models_dir: str | None
    versions: list[Version] = Field(description="Versions for these agents, oldest first.")


class VersionUsed(BaseModel):
    serving: str
    previous: str | None
    routing: str


class RouterMetrics(BaseModel):
    """Routing accuracy on what people said (feedback): each judged task's routed agent against
    the one it belonged to. `confusion[i][j]`: tasks of `labels[i]` routed to `labels[j]`."""

    accuracy: float | None = Field(description="None when nothing was judged yet.")
    n: int = Field(description="Tasks judged (good, bad and corrections).")
    labelled: int = Field(description="Of them, those whose right agent is known (confusion).")
    labels: list[str]
    confusion: list[list[int]]
    per_label: dict[str, dict[str, float]] = Field(default_factory=dict)
    source: str


class Agent(BaseModel):
    name: str
    description: str
    max_concurrency: int | None


class AgentList(BaseModel):
    agents: list[Agent]


class Approval(BaseModel):
    """A question an agent put to a person (`ctx.approve`), and the answer once given."""

    model_config = ConfigDict(extra="allow")

    id: str
    task_id: str
    question: str
    status: str = Field(description="waiting, approved, denied or expired")
    agent: str | None = None
    run_id: str | None = None
    details: dict[str, Any] | None = None
    created_at: float | None = None
    expires_at: float | None = None
    decided_at: float | None = None
    decided_by: str | None = None
    note: str | None = None


class ApprovalList(BaseModel):
    approvals: list[Approval]
