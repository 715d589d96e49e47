"""Feedback on routing decisions: a person says a task was routed well, badly, or where it should
have gone. The one path the CLI, the console and `Swarm.feedback` share; the router learns from it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from swarm.errors import ConfigError
from swarm.models import OUT_OF_SCOPE

if TYPE_CHECKING:
    from swarm.trace import TraceStore

__all__ = ["OUT_OF_SCOPE", "VERDICTS", "FeedbackRecord", "check_agent_name", "record_feedback"]

VERDICTS = ("good", "bad", "correction")


@dataclass(frozen=True)
class FeedbackRecord:
    """One stored piece of feedback, as the trace store's `feedback` table holds it."""

    id: int
    task_id: str
    kind: str
    """good, bad, or correction (then `agent` names where the task should have gone)."""
    agent: str | None
    routed_agent: str | None
    """Where the task went: the router's choice (None: out of scope), else the agent it named."""
    text: str
    router_version: str | None
    note: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FeedbackRecord:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


def record_feedback(
    store: TraceStore,
    task_id: str,
    verdict: str | None,
    *,
    agent: str | None = None,
    note: str | None = None,
    agents: Iterable[str] | None = None,
    session_id: str | None = None,
) -> FeedbackRecord:
    """Record a person's verdict on how the task `task_id` (or a unique prefix) was routed.

    - `verdict` "good" or "bad" judges the routing; with `agent` (and verdict "bad", "correction"
      or None) it is a correction: the task should have gone to `agent`, or to nobody
      (`OUT_OF_SCOPE`). None without `agent` means good. "good" naming another agent than the
      routed one contradicts itself, as "bad" naming the routed one does.
    - `agents`: the known agent names; a name outside them is an error that lists them.
      None: names are not checked.

    Raises `TaskNotFound` for an unknown task and `ConfigError` for a call that cannot be recorded.
    """
    if verdict is not None and verdict not in VERDICTS:
        raise ConfigError(f"a verdict is good, bad or correction, not {verdict!r}")
    if agent is not None and agents is not None:
        check_agent_name(agent, agents)
    store.flush_sync()  # a task written a moment ago must be readable below
    task = store.task(task_id)
    decision = store.decision(task["id"])
    routed = decision["agent"] if decision else task["agent"]
    kind = _kind(verdict, agent, routed)
    if kind != "correction" and decision is None and routed is None:
        raise ConfigError(
            f"task {task['id']} was never routed, so there is nothing to mark {kind}; "
            "name the agent that should take it instead"
        )
    row = store.record_feedback(
        task["id"],
        kind,
        agent=agent if kind == "correction" else None,
        note=note,
        session_id=session_id,
    )
    return FeedbackRecord.from_row(row)


def check_agent_name(name: str, agents: Iterable[str]) -> None:
    """A `ConfigError` naming `name`, the closest known name and all of them, unless it is known
    (or is `OUT_OF_SCOPE`)."""
    known = sorted(set(agents))
    if name == OUT_OF_SCOPE or name in known:
        return
    close = difflib.get_close_matches(name, [*known, OUT_OF_SCOPE], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"no agent named {name!r}{hint} (agents: {', '.join(known) or 'none'}; "
        f"{OUT_OF_SCOPE!r}: no agent should take it)"
    )


def _kind(verdict: str | None, agent: str | None, routed: str | None) -> str:
    went_to = routed or OUT_OF_SCOPE
    if verdict == "good":
        if agent is not None and agent != went_to:
            raise ConfigError(
                f"'good' says {_where(routed)} was right, but names {agent!r}: "
                f"say 'bad' with agent={agent!r} to correct it"
            )
        return "good"
    if agent is None:
        if verdict == "correction":
            raise ConfigError("a correction names the agent that should have taken the task")
        return verdict or "good"
    if verdict == "bad" and agent == went_to:
        raise ConfigError(
            f"'bad' says {_where(routed)} was wrong, but names {agent!r} as the right one"
        )
    return "correction"


def _where(routed: str | None) -> str:
    return "out of scope" if routed is None else repr(routed)
