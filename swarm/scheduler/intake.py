"""The inbox: tasks wait here by priority until they are routed, in micro-batches, to the lane of
the agent the router chose (or rejected, or failed when the router breaks)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from swarm.errors import StoreError
from swarm.events import EventBus
from swarm.models import Decision, RouterLike, TaskStatus
from swarm.scheduler.slots import Entry, Slots

if TYPE_CHECKING:
    from swarm.scheduler.core import Sink

__all__ = ["Intake"]

log = logging.getLogger("swarm.scheduler")


class Intake:
    """Routes what waits in the inbox, `batch_size` texts per `router.route` call."""

    def __init__(
        self,
        router: RouterLike,
        slots: Slots,
        store: Sink | None,
        finish: Callable[..., None],
        events: EventBus,
        *,
        batch_size: int,
        ambiguous: Literal["reject", "run"],
    ) -> None:
        self.router = router
        self.batch_size = batch_size
        self.ambiguous = ambiguous
        self._slots = slots
        self._store = store
        self._finish = finish
        self._events = events
        self._inbox: list[tuple[int, int, Entry]] = []
        self._ready = asyncio.Event()
        self._seq = itertools.count()

    def push(self, e: Entry) -> None:
        heapq.heappush(self._inbox, (-e.task.priority, next(self._seq), e))
        self._ready.set()

    async def run(self) -> None:
        """Route forever (until cancelled)."""
        while True:
            if not self._inbox:
                self._ready.clear()
                await self._ready.wait()
                continue
            # Several routing batches share one wait for the store: that wait, not routing, is
            # what bounds a traced scheduler's throughput.
            store = self._store
            n = min(len(self._inbox), self.batch_size * (4 if store is not None else 1))
            chunk = [heapq.heappop(self._inbox)[2] for _ in range(n)]
            if store is not None:
                # Written as queued before any agent sees it: `swarm resume` depends on it.
                try:
                    await store.flush()
                except StoreError:  # the store logged what failed; the tasks still run
                    pass
            for start in range(0, n, self.batch_size):
                batch = chunk[start : start + self.batch_size]
                try:
                    await self._route(batch)
                except Exception as exc:  # a broken router fails its batch, not the scheduler
                    log.exception("router failed")
                    for e in batch:
                        self._finish(e, TaskStatus.FAILED, error=f"router failed: {exc!r}")

    async def _route(self, batch: list[Entry]) -> None:
        live = [e for e in batch if not e.finished]
        to_route = [e for e in live if e.task.agent is None]
        if to_route:
            texts = [e.task.text for e in to_route]
            decisions: list[Any]
            if self.router.blocking:
                decisions = await asyncio.to_thread(self.router.route, texts)
            else:
                decisions = self.router.route(texts)
            if len(decisions) != len(texts):
                raise ValueError(
                    f"router returned {len(decisions)} decisions for {len(texts)} texts"
                )
            for e, d in zip(to_route, decisions, strict=True):
                e.decision = d
        lanes = self._slots.lanes
        for e in live:
            if e.finished:  # cancelled while the router ran
                continue
            if e.decision is None:
                e.decision = Decision(agent=e.task.agent, confidence=1.0, status="forced")
            d = e.decision
            if self._store is not None:
                self._store.record_decision(e.task.id, d)
            if self._events.active:
                self._events.emit_task("routed", e.task, {**d.to_dict(), "reason": d.reason})
            if d.agent is None or (d.ambiguous and self.ambiguous == "reject"):
                self._finish(e, TaskStatus.REJECTED, error=d.reason)
            elif d.agent not in lanes:
                self._finish(
                    e,
                    TaskStatus.FAILED,
                    error=f"no agent named {d.agent!r} in this swarm "
                    f"(agents: {', '.join(sorted(lanes))})",
                )
            else:
                self._slots.enqueue(e, lanes[d.agent])
