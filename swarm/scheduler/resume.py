"""Resuming a task that waited for a person: its agent body runs again from the top, and the tool
calls its earlier run recorded are answered from the trace instead of being made again.

`ResumeReplay` is what `Context.tool` consults for such a task (`ctx.replay`): a call is matched
to a recorded `tool` span of the same task by the tool's name and its arguments, in the order
they were made; a match returns the recorded output (or raises the recorded error, as its own
class: `swarm.failure.rebuild_exception`), without calling the tool; a call with no match left is
made for real. LLM calls are served the same way from the task's `llm` spans (`llm_spans`, read
by the LLM client's `bind`). Spans that were themselves served from a replay are not recordings.
A delegation whose child task finished is answered with that child's stored result (`child`);
a child that did not finish runs again, as a new task.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from swarm.failure import canonical_arguments, recorded_tool_result
from swarm.models import Result, Task, TaskStatus

__all__ = ["ResumeReplay"]


class ResumeReplay:
    """The recorded tool calls (and LLM calls) of one task, served once each, in order.

    `served` counts the calls answered from the trace, `live_calls` those made for real.
    """

    def __init__(
        self, spans: Iterable[dict[str, Any]], children: Iterable[dict[str, Any]] = ()
    ) -> None:
        self._children: dict[tuple[str, str | None, str], deque[dict[str, Any]]] = defaultdict(
            deque
        )
        for row in sorted(children, key=lambda r: (r["created_at"], r["id"])):
            if row["status"] in _SETTLED:
                key = (row["text"], row["forced_agent"], _canonical(row["payload"] or {}))
                self._children[key].append(row)
        self._tools: dict[tuple[str, str], deque[dict[str, Any]]] = defaultdict(deque)
        self.llm_spans: list[dict[str, Any]] = []
        for span in sorted(spans, key=lambda s: s["started_at"]):
            attrs = span.get("attributes") or {}
            if attrs.get("replayed") or span["status"] == "cancelled":
                continue  # an answer served from a recording, or a call cut off: not a recording
            if span["kind"] == "llm":
                self.llm_spans.append(span)
            elif span["kind"] == "tool" and "arguments" in attrs:
                if "output" in attrs or span["status"] == "error":
                    self._tools[(span["name"], _canonical(attrs["arguments"]))].append(span)
        self.served = 0
        self.live_calls = 0

    def __bool__(self) -> bool:
        return bool(self._tools) or bool(self.llm_spans) or bool(self._children)

    def child(self, text: str, agent: str | None, payload: dict[str, Any]) -> Result | None:
        """The stored result of the next finished child task delegated with this text, agent
        and payload; None when there is none left (the delegation runs)."""
        queue = self._children.get((text, agent, _canonical(payload)))
        if not queue:
            return None
        row = queue.popleft()
        self.served += 1
        return Result(
            task_id=row["id"],
            status=TaskStatus(row["status"]),
            output=row["output"],
            error=row["error"],
            agent=row["agent"],
            attempts=row["attempts"] or 0,
            hops=list(row["hops"] or []),
        )

    async def serve(
        self, task: Task, name: str, arguments: Any, call: Callable[[], Any]
    ) -> tuple[Any, bool]:
        """(recorded output, True), or (call(), False) when this call has no recording left;
        the signature of `swarm.scenarios.ToolReplay.serve`."""
        queue = self._tools.get((name, _canonical(arguments)))
        if not queue:
            self.live_calls += 1
            return call(), False
        span = queue.popleft()
        self.served += 1
        return recorded_tool_result(span), True


_SETTLED = frozenset({TaskStatus.DONE.value, TaskStatus.FAILED.value, TaskStatus.REJECTED.value})
"""Children whose result stands; a cancelled (or superseded) child runs again."""


_canonical = canonical_arguments
