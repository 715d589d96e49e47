"""What the console shows while a request runs: the trace store's writes, observed as they happen,
turned into event lines (routing, child tasks, handoffs, tools) and a spinner per working agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.spinner import Spinner
from rich.text import Text

from swarm.context import Span
from swarm.models import Decision, Result, Task, short_id
from swarm.trace import TraceStore

__all__ = ["ObservedStore", "RequestStatus"]


class ObservedStore(TraceStore):
    """A `TraceStore` that also tells a listener about each write.

    The scheduler writes every step to its store on the event loop, so observing those writes
    shows a request's progress without the scheduler knowing about the console.
    """

    listener: Any = None

    def task_queued(self, task: Task, *, resumed: bool = False) -> None:
        super().task_queued(task, resumed=resumed)
        self._tell("queued", task)

    def task_started(self, task_id: str, agent: str, attempt: int) -> None:
        super().task_started(task_id, agent, attempt)
        self._tell("started", task_id, agent, attempt)

    def task_finished(self, result: Result) -> None:
        super().task_finished(result)
        self._tell("finished", result)

    def record_decision(self, task_id: str, decision: Decision) -> None:
        super().record_decision(task_id, decision)
        self._tell("decided", task_id, decision)

    def record_span(self, span: Span) -> None:
        super().record_span(span)
        self._tell("span", span)

    def _tell(self, event: str, *args: Any) -> None:
        listener = self.listener
        if listener is not None:
            # A broken view must never lose a trace row or fail a task.
            try:
                getattr(listener, event)(*args)
            except Exception:  # pragma: no cover - defensive
                import logging

                logging.getLogger("swarm.console").exception("console listener failed")


@dataclass
class _Node:
    id: str
    text: str
    parent: str | None
    depth: int
    agent: str | None = None
    state: str = "queued"
    started: float | None = None
    spinner: Spinner = field(default_factory=lambda: Spinner("dots"))
    runs: dict[str, int] = field(default_factory=dict)


def _short_id(task_id: str) -> str:
    return short_id(task_id)  # a suffix `/trace` resolves


class RequestStatus:
    """The live state of one request and its child tasks.

    The store's listener: each write becomes an event line (`emit`, printed above the live
    region) and updates the spinners this object renders. `on_decision` receives the root's
    routing decision the moment it is made.
    """

    def __init__(
        self,
        root: Task,
        emit: Callable[[RenderableType], None],
        on_decision: Callable[[Decision], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root.id
        self.emit = emit
        self.on_decision = on_decision
        self.clock = clock
        self.nodes: dict[str, _Node] = {}
        self.note: str | None = None
        self.routed = False
        self._waiting = Spinner("dots")
        self.events: list[str] = []
        """Every event line, in order (tests and `/trace` readers like plain text)."""

    # ---- listener (called by ObservedStore on the event loop) ---------------------------------

    def queued(self, task: Task) -> None:
        if task.id == self.root:
            self.nodes[task.id] = _Node(task.id, task.text, None, 0)
        elif task.parent in self.nodes:
            parent = self.nodes[task.parent]
            self.nodes[task.id] = _Node(task.id, task.text, task.parent, parent.depth + 1)
            self._line(
                parent.depth + 1,
                ("↳ ", "cyan"),
                f"{parent.agent or 'task'} delegates ",
                (f"“{task.text}”", "italic"),
                (f"  child {_short_id(task.id)}", "grey50"),
            )

    def decided(self, task_id: str, decision: Decision) -> None:
        node = self.nodes.get(task_id)
        if node is None:
            return
        if task_id == self.root:
            self.routed = True
            if self.on_decision is not None:
                self.on_decision(decision)
            return
        self._line(node.depth, ("  route ", "bold"), decision.reason)

    def started(self, task_id: str, agent: str, attempt: int) -> None:
        node = self.nodes.get(task_id)
        if node is None:
            return
        node.agent, node.state, node.started = agent, "running", self.clock()
        # `attempt` counts every agent's attempts on the task; a retry is the same agent again.
        node.runs[agent] = node.runs.get(agent, 0) + 1
        if node.runs[agent] > 1:
            self._line(node.depth, ("⟳ ", "yellow"), f"{agent}: attempt {node.runs[agent]}")

    def span(self, span: Span) -> None:
        node = self.nodes.get(span.task_id)
        if node is None:
            return
        if span.kind == "agent" and span.name.startswith("handoff:"):
            source = span.attributes.get("source", "?")
            target = span.attributes.get("target", "?")
            reason = span.attributes.get("reason") or ""
            node.agent, node.state = target, "queued"
            self._line(
                node.depth,
                ("⇢ ", "magenta"),
                f"handoff {source} → {target}",
                (f"  {reason}" if reason else "", "grey50"),
            )
        elif span.kind in ("tool", "llm"):
            took = span.duration_ms
            status = "" if span.status == "ok" else f" {span.status}"
            self._line(
                node.depth,
                ("· ", "grey50"),
                f"{span.kind} {span.name}",
                (f" {took:.0f} ms{status}" if took is not None else status, "grey50"),
            )

    def finished(self, result: Result) -> None:
        node = self.nodes.get(result.task_id)
        if node is None:
            return
        node.state = result.status.value
        if result.task_id != self.root:
            style = "green" if result.ok else "red"
            detail = "" if result.ok else f": {result.error}"
            self._line(
                node.depth,
                ("✓ " if result.ok else "✗ ", style),
                f"child {_short_id(result.task_id)} {result.status.value} "
                f"by {result.agent or '-'}{detail}",
            )

    # ---- rendering ---------------------------------------------------------------------------

    def _line(self, depth: int, *parts: str | tuple[str, str]) -> None:
        text = Text.assemble("  " * depth, *parts)
        self.events.append(text.plain)
        self.emit(text)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        now = self.clock()
        lines: list[RenderableType] = []
        for node in self.nodes.values():
            if node.state == "running":
                took = now - (node.started or now)
                label = Text.assemble(
                    "  " * node.depth,
                    (node.agent or "?", "bold"),
                    f" working on “{node.text}”",
                    (f"  {took:.1f}s", "grey50"),
                )
                node.spinner.text = label
                lines.append(node.spinner)
        if not lines:
            waiting = "waiting for an agent…" if self.routed else "routing…"
            self._waiting.text = Text(waiting, style="grey50")
            lines.append(self._waiting)
        if self.note:
            lines.append(Text(self.note, style="yellow"))
        yield Group(*lines)
