"""Resuming a task that waited for a person: its agent body runs again from the top, and the tool
calls its earlier run recorded are answered from the trace instead of being made again.

`ResumeReplay` is what `Context.tool` consults for such a task (`ctx.replay`): a call is matched
to a recorded `tool` span of the same task by the tool's name and its arguments, in the order
they were made; a match returns the recorded output (or raises the recorded error, as its own
class: `swarm.failure.rebuild_exception`), without calling the tool; a call with no match left is
made for real. LLM calls are served the same way from the task's `llm` spans (`llm_spans`, read
by the LLM client's `bind`). Spans that were themselves served from a replay are not recordings.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from swarm.errors import ReplayedError
from swarm.failure import rebuild_exception
from swarm.models import Task

__all__ = ["ResumeReplay"]


class ResumeReplay:
    """The recorded tool calls (and LLM calls) of one task, served once each, in order.

    `served` counts the calls answered from the trace, `live_calls` those made for real.
    """

    def __init__(self, spans: Iterable[dict[str, Any]]) -> None:
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
        return bool(self._tools) or bool(self.llm_spans)

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
        if span["status"] == "error":
            record = span["attributes"].get("exception")
            if isinstance(record, dict):
                raise rebuild_exception(record)
            raise ReplayedError(f"replayed failure of tool {name!r}: {span['error']}")
        return json.loads(json.dumps(span["attributes"]["output"])), True


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
