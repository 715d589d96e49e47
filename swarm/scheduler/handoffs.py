"""Handoffs: a task moves on to the agent its current one names (`return Handoff(...)`), never
back to one it has visited, and at most `hop_limit` times."""

from __future__ import annotations

from collections.abc import Container, Sequence

from swarm.context import Span
from swarm.models import Handoff, Task

__all__ = ["handoff_refused", "handoff_span"]


def handoff_refused(
    hops: Sequence[str], handoff: Handoff, agents: Container[str], hop_limit: int
) -> str | None:
    """Why the task cannot go to `handoff.agent` after `hops` (an error message), or None."""
    target = handoff.agent
    chain = " -> ".join([*hops, target])
    if target not in agents:
        return f"handoff to unknown agent {target!r} ({chain})"
    if target in hops:
        return f"handoff loop: {chain}"
    if len(hops) > hop_limit:
        return f"more than {hop_limit} handoffs: {chain}"
    return None


def handoff_span(task: Task, source: str, handoff: Handoff) -> Span:
    """The instant span that records a handoff in the task's trace."""
    span = Span("agent", f"handoff:{source}->{handoff.agent}", task.id, task.run_id)
    span.set(reason=handoff.reason, source=source, target=handoff.agent)
    span.ended_at = span.started_at
    return span
