"""A task tree's events so far, rebuilt from the trace store: what `GET /v1/tasks/{id}/events`
sends before its live events, so a client that connects late still learns what happened (and what
waits for a person).

Rebuilt per task, parents before children: `queued` (the task row), `routed` (its stored
decision), `started` (when it started), each stored `span`, `delegated` (one per child task, whose
own history follows), `waiting` for each approval it asked for and `approved`/`denied` for those
decided (an `expired` one as `denied`, as live), and `done` once it finished. All are marked
`replayed` (`Event.replayed`, `seq` 0) and ordered by their stored times. Handoffs and LLM tokens
are not stored as events, so they are not replayed.

`replay_then_live` sends the history, then the live events but those the history sent already
(`event_key`: a step that happened between subscribing and reading the store arrives both ways).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Hashable
from typing import Any

from swarm.events import Event
from swarm.models import Decision, TaskStatus
from swarm.trace import TraceStore

__all__ = ["event_key", "replay_then_live", "task_history"]

_APPROVAL_KINDS = {"approved": "approved", "denied": "denied", "expired": "denied"}


def task_history(store: TraceStore, task_id: str) -> tuple[dict[str, Any], list[Event]]:
    """(the root task's row, the tree's replayed events in time order) for the task whose id is
    `task_id` (or ends or begins with it, as `TraceStore.task`). Synchronous: reads the store.

    Raises `TaskNotFound` (from the store) for no such task.
    """
    tree = store.task_tree(task_id)
    events: list[Event] = []
    _add_task(store, tree, events)
    events.sort(key=lambda e: e.at)  # stable: a `delegated` stays before its child's `queued`
    return tree, events


async def replay_then_live(
    history: list[Event], live: AsyncIterable[Event] | None
) -> AsyncIterator[Event]:
    """The events of `history`, then those of `live` (a `Subscription` made before the history
    was read) but the ones the history sent already (same `event_key`)."""
    sent = {key for event in history if (key := event_key(event)) is not None}
    for event in history:
        yield event
    if live is None:
        return
    async for event in live:
        if sent and event_key(event) in sent:
            continue
        yield event


def event_key(event: Event) -> Hashable | None:
    """What makes `event` the same step whether replayed or live; None for kinds never replayed
    (`handoff`, `token`, a kind an agent published)."""
    kind, data = event.kind, event.data
    if kind in ("queued", "routed", "done"):
        return kind, event.task_id
    if kind == "started":
        return kind, event.task_id, data.get("agent"), data.get("attempt")
    if kind == "span":
        return kind, data.get("id")
    if kind == "delegated":
        return kind, event.task_id, data.get("child_id")
    if kind in ("waiting", "approved", "denied"):
        return kind, data.get("approval_id")
    return None


def _add_task(store: TraceStore, node: dict[str, Any], out: list[Event]) -> None:
    def add(kind: str, data: dict[str, Any], at: float | None) -> None:
        out.append(
            Event(
                kind,
                node["id"],
                data,
                run_id=node["run_id"],
                parent_id=node["parent_id"],
                at=at if at is not None else node["created_at"],
                replayed=True,
            )
        )

    add(
        "queued",
        {"text": node["text"], "parent_id": node["parent_id"], "agent": node["forced_agent"]},
        node["created_at"],
    )
    decision = node.get("decision")
    if decision is not None:
        add("routed", _routed_data(decision), decision["created_at"])
    if node["started_at"] is not None and node["agent"] is not None:
        add("started", {"agent": node["agent"], "attempt": node["attempts"]}, node["started_at"])
    for span in node["spans"]:
        if span["ended_at"] is not None:  # a span is sent when it ends
            add("span", _span_data(span), span["ended_at"])
    for approval in store.approvals(task_id=node["id"]):
        add(
            "waiting",
            {
                "approval_id": approval["id"],
                "question": approval["question"],
                "expires_at": approval["expires_at"],
                "details": approval["details"],
                "agent": approval["agent"],
            },
            approval["created_at"],
        )
        decided = _APPROVAL_KINDS.get(approval["status"])
        if decided is not None:
            add(
                decided,
                {
                    "approval_id": approval["id"],
                    "by": approval["decided_by"],
                    "note": approval["note"],
                    "status": approval["status"],
                },
                approval["decided_at"],
            )
    for child in node["children"]:
        add(
            "delegated",
            {"child_id": child["id"], "text": child["text"], "agent": child["forced_agent"]},
            child["created_at"],
        )
        _add_task(store, child, out)
    if TaskStatus(node["status"]).finished:
        add(
            "done",
            {
                "status": node["status"],
                "agent": node["agent"],
                "output": node["output"],
                "error": node["error"],
            },
            node["finished_at"],
        )


def _routed_data(row: dict[str, Any]) -> dict[str, Any]:
    """A stored decision as the live `routed` event's data (`Decision.to_dict()` and `reason`;
    a second opinion is not stored)."""
    decision = Decision(
        agent=row["agent"],
        confidence=row["confidence"],
        candidates=tuple((str(a), float(p)) for a, p in row.get("candidates") or ()),
        version=row.get("router_version") or "",
        latency_ms=row.get("latency_ms") or 0.0,
        status=row["status"],
        rule=row.get("rule") or "",
    )
    return {**decision.to_dict(), "reason": decision.reason}


def _span_data(row: dict[str, Any]) -> dict[str, Any]:
    ended = row["ended_at"]
    return {
        "id": row["id"],
        "kind": row["kind"],
        "name": row["name"],
        "status": row["status"],
        "duration_ms": (ended - row["started_at"]) * 1000 if ended is not None else None,
        "parent_id": row["parent_id"],
        "error": row["error"],
        "started_at": row["started_at"],
    }
