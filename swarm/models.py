"""The values that cross room boundaries: a Task in, a Result out, a routing Decision, a Handoff.

Task and Result are pydantic models (they meet users, files and the trace store); Decision and
Handoff are small frozen dataclasses because the router and agents make them by the thousand.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "OUT_OF_SCOPE",
    "SHORT_ID_LENGTH",
    "Decision",
    "Handoff",
    "Result",
    "RouterLike",
    "Task",
    "TaskStatus",
    "new_id",
    "short_id",
]

OUT_OF_SCOPE = "oos"
"""The label for "no agent should take this text": in training data, feedback and corrections.
Defined here, below every room that uses it (`swarm.feedback` re-exports it)."""


def new_id() -> str:
    """A 26-character id that sorts by creation time (ms) and is random after that.

    Time-ordered ids keep the trace store's primary-key index append-mostly. So the ids of one
    run share their first characters, and what tells them apart is the end: people see and type
    `short_id`, which the store resolves (`TraceStore.task`).
    """
    return f"{time.time_ns() // 1_000_000:012x}{_bits(56):014x}"


SHORT_ID_LENGTH = 8
"""Characters of the random end an id is shown by: 32 bits, distinct among 10,000 tasks with
odds of about 99 in 100 (the store answers an ambiguous one with the candidates)."""


def short_id(task_id: str) -> str:
    """The id as people see it in the console: its last `SHORT_ID_LENGTH` characters."""
    return task_id[-SHORT_ID_LENGTH:]


# A seeded PRNG, not os.urandom: ids are made per task and span on the hot path (0.3 µs vs 3 µs).
# Reseeded in a forked child so two processes never share a sequence.
_rng = random.Random()
_bits = _rng.getrandbits
os.register_at_fork(after_in_child=_rng.seed)


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    WAITING = "waiting"
    """Waiting for a person's approval (`ctx.approve`): stored, and it survives a restart."""

    @property
    def finished(self) -> bool:
        return self not in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING)


class Task(BaseModel):
    """A request for the swarm. `agent` set means: skip routing and send it there."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_id)
    text: str
    payload: dict[str, Any] = Field(default_factory=dict)
    priority: int = 0
    """Higher runs first; equal priorities run in submission order."""
    deadline: float | None = None
    """Absolute time on the scheduler's clock after which the task fails unfinished."""
    parent: str | None = None
    session: str | None = None
    agent: str | None = None
    run_id: str | None = None


class Result(BaseModel):
    """What became of a task. `output` is whatever JSON-compatible value the agent returned."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    task_id: str
    status: TaskStatus
    output: Any = None
    error: str | None = None
    agent: str | None = None
    """The agent that finished the task (the last one, after handoffs)."""
    decision: Decision | None = None
    attempts: int = 0
    hops: list[str] = Field(default_factory=list)
    """Every agent that held the task, in order."""

    @property
    def ok(self) -> bool:
        return self.status is TaskStatus.DONE


@dataclass(frozen=True, slots=True)
class Decision:
    """The router's answer for one text.

    `agent` is None when no agent should take the text (`status` says why). An ambiguous decision
    names the best candidate but says the top two were too close to choose without asking.
    """

    agent: str | None
    confidence: float
    candidates: tuple[tuple[str, float], ...] = ()
    """Top-k (agent, calibrated probability), best first."""
    version: str = ""
    latency_ms: float = 0.0
    status: Literal["routed", "out_of_scope", "ambiguous", "forced"] = "routed"
    second_opinion: dict[str, Any] | None = None
    """When an LLM was asked (`swarm.router.second_opinion`): the router's own decision, the
    LLM's choice, whether it changed the answer, or the error that kept the router's."""
    rule: str = ""
    """Which rule decided: "head" (the head's choice stands), "out_of_scope_class",
    "far_from_examples" (the best agent's training examples are not near), "low_confidence"
    (under the threshold), "ambiguous" (two agents could take it); "" for a decision no router
    rule made."""

    @property
    def out_of_scope(self) -> bool:
        return self.status == "out_of_scope"

    @property
    def ambiguous(self) -> bool:
        return self.status == "ambiguous"

    @property
    def reason(self) -> str:
        """One line a person can read: why the router decided this."""
        if self.status == "out_of_scope":
            why = {
                "far_from_examples": "far from the training examples",
                "out_of_scope_class": "the out-of-scope class wins",
                "low_confidence": "confidence under the threshold",
            }.get(self.rule)
            detail = f"{why}; " if why else ""
            return f"out of scope ({detail}confidence {self.confidence:.2f})"
        if self.status == "ambiguous" and len(self.candidates) >= 2:
            (a, pa), (b, pb) = self.candidates[:2]
            return f"ambiguous: {a} ({pa:.2f}) or {b} ({pb:.2f})?"
        if self.status == "forced":
            return f"sent to {self.agent} without routing"
        return f"{self.agent} ({self.confidence:.2f})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "confidence": self.confidence,
            "candidates": [list(c) for c in self.candidates],
            "version": self.version,
            "latency_ms": self.latency_ms,
            "status": self.status,
            "rule": self.rule,
            **({"second_opinion": self.second_opinion} if self.second_opinion else {}),
        }


@dataclass(frozen=True, slots=True)
class Handoff:
    """Returned by an agent: this task belongs to `agent`; it continues there, same task id."""

    agent: str
    reason: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    """Merged into the task's payload before the next agent sees it."""


Result.model_rebuild()


@runtime_checkable
class RouterLike(Protocol):
    """What every caller uses of a router: `swarm.router.Router` is one, `swarm.testing.FakeRouter`
    another. Here, below the scheduler and the router, so that both can name it."""

    version: str
    """Names the model that decides; recorded with each run and decision."""
    blocking: bool
    """True: `route` does real work (the scheduler calls it in a worker thread); False: it is
    cheap enough to call on the event loop."""

    def route(self, texts: list[str]) -> list[Decision]:
        """One decision per text, in order."""
        ...
