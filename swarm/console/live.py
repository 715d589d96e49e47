"""What the console shows while a request runs: the request's events (`swarm.events`, the ones
`Swarm.stream` and `swarm serve` give), turned into event lines (routing, child tasks, handoffs,
tools) and a spinner per working agent with the tail of its streamed answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.spinner import Spinner
from rich.text import Text

from swarm.events import Event
from swarm.models import Decision, Task, short_id

__all__ = ["RequestStatus", "decision_from_event"]

TOKEN_TAIL = 60
"""Characters of an agent's streamed answer shown beside its spinner."""


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
    tokens: str = ""  # the tail of the answer being streamed


def _short_id(task_id: str) -> str:
    return short_id(task_id)  # a suffix `/trace` resolves


def decision_from_event(data: dict[str, Any]) -> Decision:
    """The `Decision` a `routed` event's data describes."""
    return Decision(
        agent=data["agent"],
        confidence=data["confidence"],
        candidates=tuple((agent, p) for agent, p in data.get("candidates") or ()),
        version=data.get("version", ""),
        latency_ms=data.get("latency_ms", 0.0),
        status=data["status"],
        second_opinion=data.get("second_opinion"),
        rule=data.get("rule", ""),
    )


class RequestStatus:
    """The live state of one request and its child tasks.

    `handle(event)` takes the request's events (a subscription to the root task's tree): each
    becomes an event line (`emit`, printed above the live region) and updates the spinners this
    object renders. `on_decision` receives the root's routing decision the moment it is made.
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

    def handle(self, event: Event) -> None:
        """Take one event of the request's tree (others are ignored)."""
        data = event.data
        if event.kind == "queued":
            self._queued(event.task_id, data["text"], event.parent_id)
            return
        node = self.nodes.get(event.task_id)
        if node is None:
            return
        match event.kind:
            case "routed":
                self._routed(node, data)
            case "started":
                node.agent, node.state, node.started = data["agent"], "running", self.clock()
                node.tokens = ""
                if data["attempt"] > 1:  # the same agent again: a retry
                    attempt = f"{node.agent}: attempt {data['attempt']}"
                    self._line(node.depth, ("⟳ ", "yellow"), attempt)
            case "span" if data["kind"] in ("tool", "llm"):
                took = data["duration_ms"]
                status = "" if data["status"] == "ok" else f" {data['status']}"
                self._line(
                    node.depth,
                    ("· ", "grey50"),
                    f"{data['kind']} {data['name']}",
                    (f" {took:.0f} ms{status}" if took is not None else status, "grey50"),
                )
            case "handoff":
                node.agent, node.state = data["to"], "queued"
                self._line(
                    node.depth,
                    ("⇢ ", "magenta"),
                    f"handoff {data['from']} → {data['to']}",
                    (f"  {data['reason']}" if data.get("reason") else "", "grey50"),
                )
            case "token":
                node.tokens = (node.tokens + data["text"])[-TOKEN_TAIL:]
            case "waiting":  # the session prints the question (`WaitingNote`) as it parks
                node.state = "waiting"
            case "approved" | "denied":
                node.state = "running"
            case "done":
                self._done(node, data)

    def _queued(self, task_id: str, text: str, parent_id: str | None) -> None:
        if task_id == self.root:
            self.nodes[task_id] = _Node(task_id, text, None, 0)
        elif parent_id in self.nodes:
            parent = self.nodes[parent_id]
            self.nodes[task_id] = _Node(task_id, text, parent_id, parent.depth + 1)
            self._line(
                parent.depth + 1,
                ("↳ ", "cyan"),
                f"{parent.agent or 'task'} delegates ",
                (f"“{text}”", "italic"),
                (f"  child {_short_id(task_id)}", "grey50"),
            )

    def _routed(self, node: _Node, data: dict[str, Any]) -> None:
        if node.id == self.root:
            self.routed = True
            if self.on_decision is not None:
                self.on_decision(decision_from_event(data))
            return
        self._line(node.depth, ("  route ", "bold"), data["reason"])

    def _done(self, node: _Node, data: dict[str, Any]) -> None:
        node.state = data["status"]
        if node.id != self.root:
            ok = data["status"] == "done"
            detail = "" if ok else f": {data['error']}"
            self._line(
                node.depth,
                ("✓ " if ok else "✗ ", "green" if ok else "red"),
                f"child {_short_id(node.id)} {data['status']} by {data['agent'] or '-'}{detail}",
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
                if node.tokens:
                    tail = " ".join(node.tokens.split())  # one line, whatever the model wrote
                    label.append(f"  {tail}", style="italic grey50")
                node.spinner.text = label
                lines.append(node.spinner)
            elif node.state == "waiting":
                lines.append(
                    Text.assemble(
                        "  " * node.depth,
                        ("⏸ ", "yellow"),
                        (node.agent or "?", "bold"),
                        " waits for a person",
                    )
                )
        if not lines:
            waiting = "waiting for an agent…" if self.routed else "routing…"
            self._waiting.text = Text(waiting, style="grey50")
            lines.append(self._waiting)
        if self.note:
            lines.append(Text(self.note, style="yellow"))
        yield Group(*lines)
