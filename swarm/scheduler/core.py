"""The scheduler's loop: tasks in (bounded), routed in micro-batches, run by workers that hold a
slot of their agent's lane, finished once. Counting is `Slots`', attempts are `Attempt`'s.

One task's life: submit -> inbox (written as queued) -> routed with whatever else is waiting ->
its agent's lane -> a worker with a slot -> attempts -> Result (or a handoff: another lane).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Coroutine
from typing import Any, Literal

from swarm.agents import AgentRegistry
from swarm.clock import Clock, SystemClock
from swarm.errors import ConfigError, SchedulerClosed
from swarm.events import EventBus
from swarm.models import Handoff, Result, RouterLike, Task, TaskStatus
from swarm.policies import RetryPolicy
from swarm.scheduler.approvals import ApprovalDesk, ApprovalStore
from swarm.scheduler.attempts import Outcome, run_attempts
from swarm.scheduler.handle import Sink, TaskHandle
from swarm.scheduler.handoffs import handoff_refused, handoff_span
from swarm.scheduler.intake import Intake
from swarm.scheduler.slots import Entry, Lane, Slots

__all__ = ["Scheduler"]

log = logging.getLogger("swarm.scheduler")


class Scheduler:
    """Runs tasks on a registry's agents, routed by `router`, traced to `store` (optional).

    `concurrency` bounds agents running at once across all lanes; each agent's
    `max_concurrency` bounds its own lane. `max_queue` bounds tasks waiting to start: `submit`
    waits for room (backpressure), `submit_nowait` raises `QueueFull`. A task waiting on its
    children (`ctx.delegate`, one or several at once) gives its slots back until the last one
    returns, so delegation cannot deadlock.

    A task waiting for a person (`ctx.approve`, through `approvals`: the trace store) gives its
    slots back the same way; `close()` leaves it `waiting` in the store, for `swarm resume`.

    An attempt whose deadline fired is timed out, even if its body catches the cancellation and
    returns (the late output goes on its span). A body still running `cancel_grace` s after its
    cancellation is abandoned: its task fails at once; the body keeps its slots until it returns
    (the limits count bodies that run), counted in `stats["overdue"]` and logged.

    Its routing loop and workers live in one task group, started by `start()` (or the first
    task) and ended by `close()`. Raises `ConfigError` for a router without `version`/`blocking`.
    Each step of a task is published on `events` (given, or its own `EventBus`; `swarm.events`).
    """

    def __init__(
        self,
        registry: AgentRegistry,
        router: RouterLike,
        *,
        store: Sink | None = None,
        clock: Clock | None = None,
        concurrency: int = 256,
        max_queue: int = 10_000,
        batch_size: int = 256,
        hop_limit: int = 5,
        max_depth: int = 8,
        ambiguous: Literal["reject", "run"] = "reject",
        retry: RetryPolicy | None = None,
        llm: Any = None,
        services: dict[str, Any] | None = None,
        run_id: str | None = None,
        tune_gc: bool = True,
        cancel_grace: float = 5.0,
        events: EventBus | None = None,
        approvals: ApprovalStore | None = None,
    ) -> None:
        if not isinstance(router, RouterLike):
            raise ConfigError(
                f"router {router!r} is not a router: it needs route(texts), version and blocking"
            )
        self.registry = registry
        self.store = store
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.hop_limit = hop_limit
        self.max_depth = max_depth
        self.retry = retry or RetryPolicy()
        self.llm = llm
        self.services = services or {}
        self.run_id = run_id
        self.tune_gc = tune_gc
        self.cancel_grace = cancel_grace
        self.slots = Slots(
            registry, concurrency=concurrency, max_queue=max_queue, spawn=self._spawn
        )
        self.events = events if events is not None else EventBus()
        """What happens to tasks, as it happens (`swarm.events`): `events.subscribe(task_id)`.
        Every step publishes only `if events.active`: with no subscriber it costs one check."""
        self.intake = Intake(
            router,
            self.slots,
            store,
            self.finish,
            self.events,
            batch_size=batch_size,
            ambiguous=ambiguous,
        )
        self.approvals = (
            None
            if approvals is None
            else ApprovalDesk(approvals, self.events, spawn=lambda c: self._group_task(c))
        )
        """Questions tasks put to people (`ctx.approve`), kept in `approvals` (the trace store);
        None without one (then `ctx.approve` raises `ConfigError`)."""
        self._group: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._closing = False

    @property
    def router(self) -> RouterLike:
        return self.intake.router

    @router.setter
    def router(self, router: RouterLike) -> None:  # the console swaps in a retrained one
        self.intake.router = router

    @property
    def closing(self) -> bool:
        """`close()` has begun: no new tasks; running ones are drained or cancelled."""
        return self._closing

    @property
    def concurrency(self) -> int:
        return self.slots.concurrency

    @property
    def max_queue(self) -> int:
        return self.slots.max_queue

    # ---- submitting ---------------------------------------------------------------------

    async def submit(self, task: Task | str, **fields: Any) -> TaskHandle:
        """Queue a task (a `Task` or its text plus Task fields, or `timeout=` seconds)."""
        task = self._make_task(task, fields)
        await self._room()
        return self.admit(task)

    def submit_nowait(self, task: Task | str, **fields: Any) -> TaskHandle:
        """`submit` without waiting: raises `QueueFull` when `max_queue` tasks wait."""
        task = self._make_task(task, fields)
        self.slots.room_now()
        return self.admit(task)

    async def run(self, task: Task | str, **fields: Any) -> Result:
        return await (await self.submit(task, **fields))

    async def resume(self, task: Task) -> TaskHandle:
        """Queue again a task recorded as unfinished (same id; its row goes back to queued)."""
        task = self._make_task(task, {})
        await self._room()
        return self.admit(task, resumed=True)

    def cancel(self, task_id: str) -> bool:
        """Cancel a queued or running task and, through it, its children."""
        e = self.slots.live.get(task_id)
        if e is None:
            return False
        for child in list(e.children or ()):
            self.cancel(child)
        if e.runner is not None and not e.runner.done():
            e.cancelling = True
            e.runner.cancel()
        else:  # waiting in the inbox or a lane: left there, skipped when it comes up
            self.finish(e, TaskStatus.CANCELLED, error="cancelled before it started")
        return True

    def _make_task(self, task: Task | str, fields: dict[str, Any]) -> Task:
        if self._closing:
            raise SchedulerClosed("the scheduler is shutting down; no new tasks")
        timeout = fields.pop("timeout", None)
        if isinstance(task, str):
            task = Task(text=task, **fields)
        elif fields:
            task = task.model_copy(update=fields)
        if timeout is not None:
            deadline = self.clock.time() + timeout
            task.deadline = deadline if task.deadline is None else min(task.deadline, deadline)
        if task.run_id is None:
            task.run_id = self.run_id
        return task

    async def _room(self) -> None:
        if self.slots.waiting >= self.slots.max_queue:
            await self.slots.room(lambda: self._closing)
        if self._closing:
            raise SchedulerClosed("the scheduler is shutting down; no new tasks")

    def admit(self, task: Task, depth: int = 0, resumed: bool = False) -> TaskHandle:
        """Put `task` in the inbox (no queue bound: `submit` checks it, children skip it)."""
        if self._supervisor is None:
            self._start()
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        e = Entry(task, future, depth=depth, resumed=resumed)
        self.slots.admit(e)
        if self.store is not None:
            self.store.task_queued(task, resumed=resumed)
        if self.events.active:
            data = {"text": task.text, "parent_id": task.parent, "agent": task.agent}
            self.events.emit_task("queued", task, data)
        self.intake.push(e)
        return TaskHandle(task.id, future, self)

    # ---- the task group: routing loop and workers ---------------------------------------

    async def start(self) -> None:
        """Start the routing loop and the task group that owns the workers (else: on the first
        task)."""
        if self._supervisor is None:
            self._start()
        await asyncio.sleep(0)  # let the group open

    def _start(self) -> None:
        if self.tune_gc:
            _tune_gc()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            intake = group.create_task(self.intake.run())
            await self._stop.wait()
            intake.cancel()
        # Leaves once every worker has: `close` waits for that at most `grace` seconds.

    def _spawn(self, lane: Lane) -> None:
        assert self._group is not None
        self._group.create_task(self._work(lane))

    def _group_task(self, coroutine: Coroutine[Any, Any, None]) -> None:
        assert self._group is not None
        self._group.create_task(coroutine)

    # ---- running one task ---------------------------------------------------------------

    async def _work(self, lane: Lane) -> None:
        """A worker holds one of the lane's slots and runs its waiting tasks one after another.

        Reusing workers instead of a new asyncio task per task halves the per-task overhead. It
        leaves when the lane is empty, when a lane starved of global slots is waiting, or when its
        task gave the slot back (it ended while waiting on children, or was handed off).
        """
        slots = self.slots
        slots.worker_started(lane)
        me = asyncio.current_task()
        assert me is not None
        held = True
        try:
            while (e := slots.next_entry(lane)) is not None:
                e.runner, e.holds_slot = me, True
                await self._execute(e, lane)
                e.runner = None
                held, e.holds_slot = e.holds_slot, False
                while me.cancelling():  # a cancel meant for that task, not for the worker
                    me.uncancel()
                if not held or slots.starved():
                    break
        finally:
            if held:
                slots.release(lane)

    async def _execute(self, e: Entry, lane: Lane) -> None:
        outcome: Outcome | Handoff
        try:
            outcome = await run_attempts(self, e, lane)
        except asyncio.CancelledError:
            outcome = (TaskStatus.CANCELLED, None, "cancelled")
        except Exception as exc:  # a bug in a policy or sink must not take the scheduler down
            log.exception("scheduler failed while running %s", e.task.id)
            outcome = (TaskStatus.FAILED, None, repr(exc))
        try:
            if isinstance(outcome, Handoff):
                self._hand_off(e, lane, outcome)
            else:
                self.finish(e, *outcome)
        except Exception as exc:  # a worker that raised would end the whole task group
            log.exception("scheduler failed while finishing %s", e.task.id)
            self.finish(e, TaskStatus.FAILED, error=repr(exc))

    def _hand_off(self, e: Entry, source: Lane, handoff: Handoff) -> None:
        error = handoff_refused(e.hops, handoff, self.slots.lanes, self.hop_limit)
        if error is not None:
            self.finish(e, TaskStatus.FAILED, error=error)
            return
        if handoff.payload:
            e.task.payload = {**e.task.payload, **handoff.payload}
        if self.events.active:
            data = {"from": source.agent.name, "to": handoff.agent, "reason": handoff.reason}
            self.events.emit_task("handoff", e.task, data)
        if self.store is not None:
            self.store.record_span(handoff_span(e.task, source.agent.name, handoff))
        self.slots.requeue(e)
        self.slots.enqueue(e, self.slots.lanes[handoff.agent])

    def finish(
        self, e: Entry, status: TaskStatus, output: Any = None, error: str | None = None
    ) -> None:
        """Settle `e` once: its Result to the store and its waiters; its children cancelled."""
        if e.finished:
            return
        e.finished = True
        if e.left_waiting:  # the stored row stays `waiting`, for `swarm resume`
            error = "the scheduler shut down while it waited for a person; it is still waiting"
        result = Result(
            task_id=e.task.id,
            status=status,
            output=output,
            error=error,
            agent=e.hops[-1] if e.hops else None,
            decision=e.decision,
            attempts=e.attempts,
            hops=list(e.hops),
        )
        if self.store is not None and not e.left_waiting:
            try:
                self.store.task_finished(result)
            except Exception:  # a store that refuses a value must not leave waiters hanging
                log.exception("the trace store refused the result of task %s", e.task.id)
        if self.events.active:  # before the waiters wake: a stream ends with this event
            data = {"status": status.value, "agent": result.agent, "output": output, "error": error}
            self.events.emit_task("done", e.task, data)
        if not e.future.done():
            e.future.set_result(result)
        self.slots.done(e)
        if e.children:
            for child in list(e.children):  # nothing outlives its parent
                self.cancel(child)
        if e.task.parent is not None:
            parent = self.slots.live.get(e.task.parent)
            if parent is not None and parent.children:
                parent.children.discard(e.task.id)

    # ---- shutting down ------------------------------------------------------------------

    async def join(self) -> None:
        """Wait until every submitted task has finished and its slot is free."""
        await self.slots.idle.wait()

    async def close(self, *, drain: bool = True, grace: float = 10.0) -> None:
        """Stop taking tasks; let running ones finish (`drain`) within `grace` s; cancel the rest.

        Tasks waiting for a person are not waited for: they stay `waiting` in the store.

        Tasks still unfinished after that are recorded as cancelled ("scheduler shut down").
        Bodies that ignore their cancellation are waited for at most `grace` s more, then left
        to end on their own (logged).
        """
        self._closing = True
        self.slots.close()
        live = self.slots.live
        if drain and live:
            try:
                async with self.clock.timeout_at(self.clock.time() + grace):
                    await self._drained()
            except TimeoutError:
                log.warning("shutdown: %d tasks still running after %ss", len(live), grace)
        runners = []
        for e in list(live.values()):
            if e.runner is not None and not e.runner.done():
                runners.append(e.runner)
                e.cancelling = True
                e.runner.cancel()
            else:
                self.finish(e, TaskStatus.CANCELLED, error="scheduler shut down")
        if runners:
            await asyncio.wait(runners, timeout=grace)
        for e in list(live.values()):  # runners that ignored cancellation
            self.finish(e, TaskStatus.CANCELLED, error="scheduler shut down")
        if self._supervisor is not None:
            self._stop.set()
            await asyncio.wait([self._supervisor], timeout=grace)
            if not self._supervisor.done():
                log.warning("shutdown: agent bodies that ignore cancellation are still running")
            elif not self._supervisor.cancelled() and self._supervisor.exception() is not None:
                raise self._supervisor.exception()  # type: ignore[misc]
        if self.store is not None:
            await self.store.flush()

    async def _drained(self) -> None:
        """Every task finished, or waits for a person (no drain waits on that: those stay
        `waiting` in the store for the next process)."""
        live = self.slots.live
        if self.approvals is None:  # no task can wait for a person
            await self.slots.idle.wait()
            return
        while live and not all(e.asking for e in live.values()):
            idle = asyncio.ensure_future(self.slots.idle.wait())
            await asyncio.wait([idle], timeout=0.05)
            idle.cancel()

    @property
    def stats(self) -> dict[str, int]:
        """Tasks not finished (`live`), waiting to start, holding a slot (`running`), and bodies
        abandoned after ignoring their cancellation (`overdue`)."""
        return self.slots.stats()

    def running_by_agent(self) -> dict[str, int]:
        """Slots held per agent: bodies running, not counting tasks waiting on children."""
        return self.slots.running_by_agent()


def _tune_gc() -> None:
    """Make CPython's full garbage collections rarer, unless the application chose thresholds.

    Under load the scheduler keeps tens of thousands of small objects alive (queued tasks, their
    futures and results); with the default thresholds every full collection walks all of them,
    which cost half the throughput in `benchmarks/scheduler.py`. Young collections are untouched,
    so cyclic garbage is still found quickly.
    """
    if gc.get_threshold() == (700, 10, 10):
        gc.set_threshold(700, 10, 100)
