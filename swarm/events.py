"""The one event model: what happens to a task as it happens, for `Swarm.stream`, the console,
`swarm serve`'s server-sent events and the web page.

The scheduler publishes `Event`s to its `EventBus`; a `Subscription` receives those of one task
and of the tasks it delegated to (or of every task). Publishing never blocks and never raises: a
subscriber that falls behind loses its oldest events (counted in `dropped`), never the scheduler's
time. With no subscriber, `publish` returns at once.

Kinds (`Event.kind`) and their `data`:

- `queued`: {"text", "parent_id", "agent" (forced, or None)}
- `routed`: {"agent", "status", "confidence", "rule", "candidates": [[agent, p], ...]}, and the
  rest of `Decision.to_dict()` ("version", "latency_ms", "second_opinion" when asked) plus
  "reason" (`Decision.reason`)
- `started`: {"agent", "attempt"}: `ctx.attempt`, that agent's attempt (2 on its first retry)
- `span`: a finished span: {"id", "kind", "name", "status", "duration_ms", "parent_id", "error",
  "started_at"}; its attributes stay in the trace store
- `delegated`: {"child_id", "text", "agent"} (the parent's event, just before the child's `queued`)
- `handoff`: {"from", "to", "reason"}
- `waiting`: {"approval_id", "question", "expires_at", "details", "agent"}
- `approved` / `denied`: {"approval_id", "by", "note", "status"} (`denied` also for an approval
  that `expired`: then `status` says so)
- `token`: {"text"}: a chunk of a streamed LLM answer, the backend's secrets scrubbed
- `done`: {"status", "agent", "output", "error"}: the task's last event

Every event of a delegated task carries its parent's id in `parent_id`. A `replayed` event was
rebuilt from the trace store (`swarm serve` sends a task's history first: `swarm.serve.history`);
its `seq` is 0, and handoffs and tokens are never replayed. Where they come from:
`Scheduler.admit` (queued), `Intake` (routed), `Attempt` (started, delegated), `Context.record_span`
(span: every span `ctx.span`, `ctx.tool` and the LLM client record, traced or not),
`ChatStream` (token), `Scheduler` (handoff, done). A step publishes only `if bus.active`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from swarm.models import Task

__all__ = ["EVENT_KINDS", "Event", "EventBus", "EventKind", "Subscription"]

EventKind = Literal[
    "queued",
    "routed",
    "started",
    "span",
    "delegated",
    "handoff",
    "waiting",
    "approved",
    "denied",
    "token",
    "done",
]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to task `task_id` at `at` (seconds since the epoch)."""

    kind: str
    task_id: str
    data: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    parent_id: str | None = None
    """The task's parent, for a delegated task: subscriptions to the parent receive it too."""
    at: float = field(default_factory=time.time)
    seq: int = 0
    """Its order on the bus that published it (from 1); 0 before it is published, and for a
    replayed event."""
    replayed: bool = False
    """Rebuilt from the trace store, not published live: `swarm serve` sends a task's history so
    before its live events (its stream opened after they happened)."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (the SSE `data` of `swarm serve`)."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "task_id": self.task_id,
            "parent_id": self.parent_id,
            "run_id": self.run_id,
            "at": self.at,
            "data": self.data,
            "replayed": self.replayed,
        }


class Subscription:
    """Events for one task tree (or all tasks), as an async iterator.

    Iteration ends after the root task's `done` event (a tree subscription), or when `close()` is
    called. Use it as `async with bus.subscribe(task_id) as events: async for e in events: ...`.
    """

    def __init__(self, bus: EventBus, task_id: str | None, max_buffer: int) -> None:
        self._bus = bus
        self.task_id = task_id
        self._tasks: set[str] | None = {task_id} if task_id is not None else None
        self._buffer: deque[Event] = deque()
        self._max = max_buffer
        self._wake = asyncio.Event()
        self._closed = False
        self.dropped = 0
        """Events lost because this subscriber fell `max_buffer` events behind."""

    def wants(self, event: Event) -> bool:
        if self._tasks is None:
            return True
        if event.task_id in self._tasks:
            return True
        if event.parent_id is not None and event.parent_id in self._tasks:
            self._tasks.add(event.task_id)  # a child of the tree joins it
            return True
        return False

    def follow(self, task_ids: Iterable[str]) -> None:
        """Receive the events of these tasks too (delegated tasks already known, e.g. from the
        trace store, whose own children then join as usual). No-op for an all-tasks one."""
        if self._tasks is not None:
            self._tasks.update(task_ids)

    def put(self, event: Event) -> None:
        if len(self._buffer) >= self._max:
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append(event)
        if event.kind == "done" and event.task_id == self.task_id:
            self._closed = True  # the root is finished: nothing more belongs to this tree
            self._bus._unsubscribe(self)
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._bus._unsubscribe(self)
        self._wake.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return self._buffer.popleft()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out from the scheduler to subscribers, on one event loop (not thread-safe)."""

    def __init__(self, max_buffer: int = 10_000) -> None:
        self._subscriptions: list[Subscription] = []
        self._seq = itertools.count(1)
        self.max_buffer = max_buffer
        self.active = False
        """Whether anyone listens: publishers skip building events when not. A plain attribute
        (kept by `subscribe` and the end of a subscription), not a property: the scheduler reads
        it several times per task, and a property call costs ten times as much."""

    def subscribe(
        self, task_id: str | None = None, *, max_buffer: int | None = None
    ) -> Subscription:
        """Events of `task_id` and its delegated tasks from now on (all tasks when None).

        Subscribe before submitting to see the task's first events (`Swarm.stream` does)."""
        sub = Subscription(self, task_id, max_buffer or self.max_buffer)
        self._subscriptions.append(sub)
        self.active = True
        return sub

    def publish(self, event: Event) -> Event:
        """Hand `event` to every subscriber that wants it; returns it with its `seq` set."""
        if not self._subscriptions:
            return event
        return self._deliver(
            Event(
                event.kind,
                event.task_id,
                event.data,
                event.run_id,
                event.parent_id,
                event.at,
                next(self._seq),
            )
        )

    def emit(
        self,
        kind: str,
        task_id: str,
        data: dict[str, Any] | None = None,
        *,
        parent_id: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """Publish an event built from these fields, only when anyone listens (the cheap path)."""
        if self._subscriptions:
            at, seq = time.time(), next(self._seq)
            self._deliver(Event(kind, task_id, data or {}, run_id, parent_id, at, seq))

    def emit_task(self, kind: str, task: Task, data: dict[str, Any]) -> None:
        """`emit` for `task`: its id, parent and run go on the event (the scheduler's path)."""
        if self._subscriptions:
            at, seq = time.time(), next(self._seq)
            self._deliver(Event(kind, task.id, data, task.run_id, task.parent, at, seq))

    def _deliver(self, event: Event) -> Event:
        subs = self._subscriptions
        if len(subs) == 1:  # the common case: no copy of the list
            if subs[0].wants(event):
                subs[0].put(event)  # may unsubscribe it: the loop below would need the copy
            return event
        for sub in list(subs):
            if sub.wants(event):
                sub.put(event)
        return event

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
            self.active = bool(self._subscriptions)
