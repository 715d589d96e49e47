"""What the scheduler hands out (`TaskHandle`) and what it writes to (`Sink`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from swarm.context import Span
from swarm.models import Decision, Result, Task

__all__ = ["Sink", "TaskHandle"]


class Sink(Protocol):
    """What the scheduler writes to: `TraceStore` has these methods."""

    def task_queued(self, task: Task, *, resumed: bool = False) -> None: ...
    def task_started(self, task_id: str, agent: str, attempt: int) -> None: ...
    def task_finished(self, result: Result) -> None: ...
    def record_decision(self, task_id: str, decision: Decision) -> None: ...
    def record_span(self, span: Span) -> None: ...
    async def flush(self) -> None: ...


class _Cancels(Protocol):
    def cancel(self, task_id: str) -> bool: ...


class TaskHandle:
    """What `submit` returns: `await handle` gives the `Result`; `handle.cancel()` cancels."""

    __slots__ = ("id", "_future", "_scheduler")

    def __init__(self, task_id: str, future: asyncio.Future[Result], scheduler: _Cancels) -> None:
        self.id = task_id
        self._future = future
        self._scheduler = scheduler

    def __await__(self) -> Any:
        if self._future.done():  # the common case under load: no shield to build
            return self._future.result()
        # Shielded: a waiter that is cancelled must not cancel the task for other waiters.
        return (yield from asyncio.shield(self._future).__await__())

    def done(self) -> bool:
        return self._future.done()

    def add_done_callback(self, callback: Callable[[Result], object]) -> None:
        """Call `callback(result)` on the event loop once the task has finished."""
        self._future.add_done_callback(lambda f: callback(f.result()))

    def cancel(self) -> bool:
        return self._scheduler.cancel(self.id)
