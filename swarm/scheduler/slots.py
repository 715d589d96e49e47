"""Lanes and slots: the one object that owns every count the scheduler keeps.

Tasks live (not finished), tasks waiting to start (the queue bound), slots held per agent and in
all, bodies overdue; and who gets a slot when one frees: tasks taking their slot back after a
delegation first, then lanes that waited for a global slot, then new work.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from swarm.agents import Agent
from swarm.errors import QueueFull, SchedulerClosed
from swarm.models import Decision, Result, Task

__all__ = ["Entry", "Lane", "Slots"]


@dataclass(eq=False, slots=True)
class Entry:
    """One live task, from `submit` until its `Result`."""

    task: Task
    future: asyncio.Future[Result]
    depth: int = 0  # delegation depth
    decision: Decision | None = None
    hops: tuple[str, ...] = ()  # agents it went to; a tuple: no list per queued task
    attempts: int = 0
    runner: asyncio.Task[Any] | None = None  # the worker running it
    children: set[str] | None = None  # made on the first delegation
    holds_slot: bool = False
    finished: bool = False
    cancelling: bool = False  # the scheduler cancelled its runner: the attempt is ending
    waiting: bool = False  # counted in `Slots.waiting`: in the inbox or a lane, not started
    lane: Lane | None = None  # the lane it waits in
    resumed: bool = False  # queued again by `swarm resume`: its recorded calls may be replayed
    replay: Any = None  # for a resumed task that asked for approval (swarm.scheduler.resume)
    left_waiting: bool = False  # the scheduler shut down while it waited for a person
    asking: int = 0  # approvals it waits on now (`ctx.approve`)


@dataclass(eq=False, slots=True)
class Lane:
    """One agent's waiting line (by priority) and its share of the slots."""

    agent: Agent
    running: int = 0  # slots held
    queued: int = 0  # entries in `ready` still waiting (cancelled ones stay until popped)
    starting: int = 0  # workers made that have not taken an entry yet
    ready: list[tuple[int, int, Entry]] = field(default_factory=list)
    resumers: deque[asyncio.Future[None]] = field(default_factory=deque)


class Slots:
    """Owns the counts; `spawn(lane)` starts a worker that holds a slot `take`n for it.

    `concurrency` bounds slots held across lanes, each agent's `max_concurrency` its lane's.
    `max_queue` bounds tasks waiting to start. `idle` is set while no task is live and no slot is
    held (except by bodies abandoned after ignoring their cancellation: `overdue`).
    """

    def __init__(
        self,
        agents: Iterable[Agent],
        *,
        concurrency: int,
        max_queue: int,
        spawn: Callable[[Lane], None],
    ) -> None:
        self.lanes = {a.name: Lane(a) for a in agents}
        self.concurrency = concurrency
        self.max_queue = max_queue
        self.live: dict[str, Entry] = {}
        self.waiting = 0
        self.running = 0
        self.overdue = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._spawn = spawn
        self._seq = itertools.count()
        self._starved: dict[str, Lane] = {}  # lanes with work, blocked by the global limit
        self._space_waiters: deque[asyncio.Future[None]] = deque()

    # ---- tasks in and out ---------------------------------------------------------------

    def admit(self, e: Entry) -> None:
        if e.task.id in self.live:
            raise ValueError(f"task {e.task.id} is already queued or running")
        self.live[e.task.id] = e
        self.idle.clear()
        self.waiting += 1
        e.waiting = True

    def done(self, e: Entry) -> None:
        """`e` finished (whatever its state: waiting, running, abandoned)."""
        if e.waiting:
            self._unwait(e)
        del self.live[e.task.id]
        self._check_idle()

    def requeue(self, e: Entry) -> None:
        """`e` waits again (handed off to another agent)."""
        self.waiting += 1
        e.waiting = True

    def room_now(self) -> None:
        if self.waiting >= self.max_queue:
            raise QueueFull(f"{self.waiting} tasks are waiting (max_queue={self.max_queue})")

    async def room(self, closing: Callable[[], bool]) -> None:
        """Backpressure: wait while `max_queue` tasks are waiting to start."""
        while self.waiting >= self.max_queue and not closing():
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._space_waiters.append(waiter)
            await waiter

    def close(self) -> None:
        """Wake every submitter waiting for room with `SchedulerClosed`."""
        while self._space_waiters:
            waiter = self._space_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(SchedulerClosed("the scheduler is shutting down"))

    def _unwait(self, e: Entry) -> None:
        e.waiting = False
        self.waiting -= 1
        if e.lane is not None:
            e.lane.queued -= 1
            e.lane = None
        while self._space_waiters and self.waiting < self.max_queue:
            waiter = self._space_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _check_idle(self) -> None:
        if not self.live and self.running == self.overdue:
            self.idle.set()

    # ---- lanes --------------------------------------------------------------------------

    def enqueue(self, e: Entry, lane: Lane) -> None:
        e.lane = lane
        lane.queued += 1
        heapq.heappush(lane.ready, (-e.task.priority, next(self._seq), e))
        self.pump(lane)

    def next_entry(self, lane: Lane) -> Entry | None:
        """The lane's next waiting entry, for a worker that holds one of its slots."""
        while lane.ready:
            e = heapq.heappop(lane.ready)[2]
            if not e.finished:
                self._unwait(e)
                return e
        return None

    def worker_started(self, lane: Lane) -> None:
        lane.starting -= 1

    def starved(self) -> bool:
        """Lanes wait for a global slot: a worker should give its slot up rather than go on."""
        return bool(self._starved)

    # ---- slots --------------------------------------------------------------------------

    def pump(self, lane: Lane) -> None:
        """Give free slots to tasks taking theirs back after a delegation, then to new workers."""
        limit = lane.agent.max_concurrency
        while lane.running < limit and self.running < self.concurrency:
            if lane.resumers:
                waiter = lane.resumers.popleft()
                if not waiter.done():
                    self._take(lane)
                    waiter.set_result(None)
                continue
            if lane.queued <= lane.starting:
                break
            self._take(lane)
            lane.starting += 1
            self._spawn(lane)
        if (lane.queued > lane.starting or lane.resumers) and lane.running < limit:
            self._starved[lane.agent.name] = lane

    def _take(self, lane: Lane) -> None:
        lane.running += 1
        self.running += 1

    def release(self, lane: Lane) -> None:
        lane.running -= 1
        self.running -= 1
        # Lanes that waited for a global slot go first, so one busy agent cannot hog them all.
        while self._starved and self.running < self.concurrency:
            name = next(iter(self._starved))
            self.pump(self._starved.pop(name))
        self.pump(lane)
        self._check_idle()

    async def reacquire(self, lane: Lane) -> None:
        """Take a slot of `lane` again, waiting for one (ahead of new work) if none is free."""
        if lane.running < lane.agent.max_concurrency and self.running < self.concurrency:
            self._take(lane)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.resumers.append(waiter)
        self._starved.setdefault(lane.agent.name, lane)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(lane)  # handed a slot just as we were cancelled
            raise

    def abandoned(self, delta: int) -> None:
        """A body that ignored its cancellation was abandoned (+1), or at last returned (-1)."""
        self.overdue += delta
        self._check_idle()

    # ---- what they say ------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        return {
            "live": len(self.live),
            "waiting": self.waiting,
            "running": self.running,
            "overdue": self.overdue,
        }

    def running_by_agent(self) -> dict[str, int]:
        return {name: lane.running for name, lane in self.lanes.items()}
