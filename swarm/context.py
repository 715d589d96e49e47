"""What an agent can do while it runs: delegate, hand off (by returning `Handoff`), open spans, call
tools and the LLM, ask a person (`approve`). One `Context` per attempt; the scheduler makes it.
"""

from __future__ import annotations

import contextvars
import inspect
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from swarm.failure import exception_record
from swarm.models import Result, Task, new_id

if TYPE_CHECKING:
    from swarm.clock import Clock
    from swarm.events import EventBus

__all__ = ["TOOL_REPLAY_SERVICE", "Context", "Span", "SpanKind", "SpanSink"]

TOOL_REPLAY_SERVICE = "swarm.tool_replay"
"""The `services` key `Context.tool` looks under for a replay (`swarm.scenarios.ToolReplay`)."""

SpanKind = Literal["agent", "tool", "llm", "route", "delegate", "approval"]

_current_span: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "swarm_current_span", default=None
)


@dataclass(slots=True)
class Span:
    """One timed step of a task. `attributes` must stay JSON-compatible: it goes to the store."""

    kind: str
    name: str
    task_id: str
    run_id: str | None = None
    parent_id: str | None = None
    id: str = field(default_factory=new_id)
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    status: str = "ok"
    error: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def set(self, **attributes: Any) -> None:
        self.attributes.update(attributes)

    @property
    def duration_ms(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at) * 1000

    def event_data(self) -> dict[str, Any]:
        """The data of its `span` event (`swarm.events`); attributes stay in the trace store."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "parent_id": self.parent_id,
            "error": self.error,
            "started_at": self.started_at,
        }


class SpanSink(Protocol):
    """Where finished spans go: the trace store, or nowhere."""

    def record_span(self, span: Span) -> None: ...


class _Delegator(Protocol):
    async def delegate(self, parent: Task, child: Task) -> Result: ...

    async def approve(
        self,
        task: Task,
        question: str,
        *,
        occurrence: int,
        expires_in: float | None,
        details: dict[str, Any],
    ) -> dict[str, Any]: ...


class _Replay(Protocol):
    """A resumed task's recorded calls (`swarm.scheduler.resume.ResumeReplay`): tool calls answered
    by `serve` (as `swarm.scenarios.ToolReplay` does), LLM calls from `llm_spans`."""

    llm_spans: list[dict[str, Any]]

    async def serve(
        self, task: Task, name: str, arguments: Any, call: Callable[[], Any]
    ) -> tuple[Any, bool]: ...

    def child(self, text: str, agent: str | None, payload: dict[str, Any]) -> Result | None: ...


class Context:
    """Handed to `Agent.run(task, ctx)`.

    - `await ctx.delegate("text")`: a child task, routed like any other; returns its `Result`.
    - `async with ctx.span("tool", "lookup") as span: ...`: a timed, recorded step.
    - `await ctx.tool(fn, **kwargs)`: call a tool inside a span.
    - `ctx.llm`: the configured LLM client, or None when the swarm has none.
    - `ctx.services`: shared objects the swarm was given (a database, a sandbox), by name.
    - `ctx.events`: the scheduler's `EventBus` (None outside a scheduler); each finished span
      goes there as a `span` event, and `ctx.publish(kind, data)` adds others for this task.
    - `await ctx.approve("refund 120.00?")`: wait for a person's yes or no (see `approve`).
    - `ctx.replay`: for a task resumed after an approval, the recorded tool and LLM calls its
      earlier run made (`swarm.scheduler.resume.ResumeReplay`); None otherwise.
    """

    __slots__ = (
        "_asked",
        "_scheduler",
        "_sink",
        "agent",
        "attempt",
        "clock",
        "events",
        "llm",
        "replay",
        "services",
        "task",
    )

    def __init__(
        self,
        task: Task,
        *,
        agent: str,
        attempt: int,
        scheduler: _Delegator,
        sink: SpanSink | None,
        clock: Clock,
        llm: Any = None,
        services: dict[str, Any] | None = None,
        events: EventBus | None = None,
        replay: Any = None,
    ) -> None:
        self.task = task
        self.agent = agent
        self.attempt = attempt
        self.llm = llm
        self.clock = clock
        self.services = services or {}
        self.events = events
        self.replay: _Replay | None = replay
        self._scheduler = scheduler
        self._sink = sink
        self._asked: dict[str, int] | None = None  # times each question was asked, this attempt

    async def delegate(
        self,
        text: str,
        *,
        payload: dict[str, Any] | None = None,
        agent: str | None = None,
        priority: int | None = None,
    ) -> Result:
        """Run a child task (routed unless `agent` is given) and wait for its result.

        The child inherits the session and the deadline; cancelling this task cancels it. A task
        resumed after an approval gets the stored result of a child its earlier run delegated to
        and that finished (the same text, agent and payload), instead of running it again.
        """
        if self.replay is not None:
            recorded = self.replay.child(text, agent, payload or {})
            if recorded is not None:
                name = agent or "routed"
                async with self.span("delegate", name, child_task=recorded.task_id, replayed=True):
                    return recorded
        child = Task(
            text=text,
            payload=payload or {},
            priority=self.task.priority if priority is None else priority,
            deadline=self.task.deadline,
            parent=self.task.id,
            session=self.task.session,
            agent=agent,
            run_id=self.task.run_id,
        )
        async with self.span("delegate", agent or "routed", child_task=child.id):
            return await self._scheduler.delegate(self.task, child)

    async def approve(
        self,
        question: str,
        *,
        # Not `asyncio.timeout`: the limit is stored with the question and outlives a restart.
        timeout: float | None = None,  # noqa: ASYNC109
        details: dict[str, Any] | None = None,
    ) -> bool:
        """Ask a person `question` and wait for the answer: True if approved; False if denied,
        or if nobody decided within `timeout` seconds (the approval is then `expired`; None:
        wait as long as it takes).

        The question is stored (`TraceStore.approvals`, with `details`: JSON-compatible facts
        for the person) and the task's status is `waiting` until a person decides, from the
        console (`/approve ID`), the CLI (`swarm approve ID [--deny]`), the HTTP API or the
        page, in this process or another. While it waits the task gives its slots back (as a
        delegation does) and its agent's `timeout` is paused (the task's deadline still runs);
        cancelling the task withdraws the question (`cancelled`).

        A waiting task survives a restart: after `swarm resume` the agent's `run` starts again
        from the top, and what it did before is not done twice: each `ctx.tool` call and LLM
        call the earlier run recorded is answered from the trace (matched by tool name and
        arguments, or by LLM request, in order), a delegation to a child task that finished
        returns the child's stored result, and this call finds the stored approval (the same
        question, asked as many times before in this task) instead of asking again. Code
        outside tools, LLM calls and delegations does run again; after the approval, calls
        run for real (as do calls the earlier run did not record).

        Raises `ConfigError` when the swarm keeps no trace store (an approval must be stored),
        and `SchedulerClosed` once the attempt has ended.
        """
        if self._asked is None:
            self._asked = {}
        occurrence = self._asked.get(question, 0)
        self._asked[question] = occurrence + 1
        async with self.span("approval", question[:200], question=question) as span:
            row = await self._scheduler.approve(
                self.task,
                question,
                occurrence=occurrence,
                expires_in=timeout,
                details=_jsonable(details or {}),
            )
            span.set(
                approval_id=row["id"],
                decision=row["status"],
                decided_by=row.get("decided_by"),
                note=row.get("note"),
            )
        return bool(row["status"] == "approved")

    @asynccontextmanager
    async def span(self, kind: str, name: str, **attributes: Any) -> AsyncIterator[Span]:
        parent = _current_span.get()
        span = Span(
            kind=kind,
            name=name,
            task_id=self.task.id,
            run_id=self.task.run_id,
            parent_id=parent.id if parent is not None else None,
            attributes=dict(attributes),
        )
        token = _current_span.set(span)
        try:
            yield span
        except BaseException as exc:
            span.status = "cancelled" if _is_cancel(exc) else "error"
            span.error = f"{type(exc).__name__}: {exc}"
            if span.status == "error":  # so a replay raises the same class (swarm.failure)
                span.attributes["exception"] = exception_record(exc)
            raise
        finally:
            _current_span.reset(token)
            span.ended_at = time.time()
            self.record_span(span)

    def record_span(self, span: Span) -> None:
        """A finished span: to the trace store (when traced) and, when anyone listens, to the
        event bus as a `span` event."""
        if self._sink is not None:
            self._sink.record_span(span)
        events = self.events
        if events is not None and events.active:
            events.emit_task("span", self.task, span.event_data())

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Publish a `kind` event about this task (`swarm.events` lists the kinds), when anyone
        listens; a no-op outside a scheduler."""
        events = self.events
        if events is not None and events.active:
            events.emit_task(kind, self.task, data)

    async def tool(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Call `fn(**kwargs)` (sync or async) in a `tool` span that keeps arguments and output.

        A replay puts an object under `services[TOOL_REPLAY_SERVICE]`
        (`swarm.scenarios.ToolReplay`): it serves the recorded output instead of calling `fn`.
        """
        name = str(getattr(fn, "name", None) or getattr(fn, "__name__", type(fn).__name__))
        async with self.span("tool", name, arguments=_jsonable(kwargs)) as span:
            # A resumed task's own recording first, then a replay's (`swarm replay`).
            replay = self.replay or self.services.get(TOOL_REPLAY_SERVICE)
            if replay is not None:
                out, replayed = await replay.serve(
                    self.task, name, span.attributes["arguments"], lambda: fn(**kwargs)
                )
                span.set(replayed=replayed)
            else:
                out = fn(**kwargs)
            if inspect.isawaitable(out):
                out = await out
            span.set(output=_jsonable(out))
            return out


def enter_span(span: Span) -> contextvars.Token[Span | None]:
    """Make `span` the parent of spans opened below it (used by the scheduler for agent spans)."""
    return _current_span.set(span)


def leave_span(token: contextvars.Token[Span | None]) -> None:
    _current_span.reset(token)


def _is_cancel(exc: BaseException) -> bool:
    import asyncio

    return isinstance(exc, asyncio.CancelledError)


def _jsonable(value: Any) -> Any:
    """A JSON-compatible rendering of `value` for span attributes (repr for the rest)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _jsonable(dump(mode="json"))
    return repr(value)
