"""The asyncio scheduler: a bounded priority inbox, routing in micro-batches, per-agent lanes with
concurrency limits, timeouts, retries, handoffs, delegation, cancellation and graceful shutdown.

One task's life: submit -> inbox (written as queued) -> routed with whatever else is waiting ->
its agent's lane -> a slot -> attempts -> Result. Policies are small objects consulted here.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import itertools
import json
import logging
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from swarm.agents import Agent, AgentRegistry
from swarm.agents import base as agents_base
from swarm.clock import Clock, SystemClock, Timer
from swarm.context import Context, Span, _jsonable, enter_span, leave_span
from swarm.errors import QueueFull, SchedulerClosed
from swarm.models import Decision, Handoff, Result, Task, TaskStatus
from swarm.policies import RetryPolicy

__all__ = ["RouterLike", "Scheduler", "TaskHandle"]

log = logging.getLogger("swarm.scheduler")


_Outcome = tuple[TaskStatus, Any, str | None]
"""status, output, error: what an attempt came to, before it becomes a Result."""


class _LateTimeout(TimeoutError):
    """The deadline fired, yet the body went on and returned: the task did not finish in time."""

    def __init__(self, output: Any, late_by: float) -> None:
        super().__init__(f"the agent went on past its deadline and returned {late_by:.2f}s late")
        self.output = output
        self.late_by = late_by


class RouterLike(Protocol):
    def route(self, texts: list[str]) -> list[Decision]: ...


class Sink(Protocol):
    """What the scheduler writes to: `TraceStore` has these methods."""

    def task_queued(self, task: Task, *, resumed: bool = False) -> None: ...
    def task_started(self, task_id: str, agent: str, attempt: int) -> None: ...
    def task_finished(self, result: Result) -> None: ...
    def record_decision(self, task_id: str, decision: Decision) -> None: ...
    def record_span(self, span: Span) -> None: ...
    async def flush(self) -> None: ...


@dataclass(eq=False, slots=True)
class _Entry:
    task: Task
    future: asyncio.Future[Result]
    depth: int = 0
    decision: Decision | None = None
    hops: list[str] = field(default_factory=list)
    attempts: int = 0
    runner: asyncio.Task[None] | None = None
    children: set[str] | None = None  # made on the first delegation
    holds_slot: bool = False
    finished: bool = False
    cancelling: bool = False  # the scheduler cancelled its runner: the attempt is ending
    waiting: bool = False  # counted in `Scheduler._pending`: in the inbox or a lane, not started
    lane: _Lane | None = None  # the lane it waits in


@dataclass(eq=False, slots=True)
class _Attempt:
    """One call of `agent.run`; the `Context` delegates through it.

    While at least one of its delegations is outstanding the task gives its agent slot and its
    global slot back (once), so children that need the same agent or the last global slot cannot
    deadlock behind it; when the last one returns it takes them back (once). A delegation that
    returns after the attempt ended (`closed`) takes nothing back.
    """

    scheduler: Scheduler
    entry: _Entry
    lane: _Lane
    end: float | None  # its deadline on the scheduler's clock
    outstanding: int = 0
    closed: bool = False  # the body returned or raised
    expired: bool = False  # its deadline fired
    abandoned: bool = False  # still running `cancel_grace` s after that: its task is failed
    timer: Timer | None = None  # the deadline, then the grace
    lock: asyncio.Lock | None = None  # made on the first delegation: one take-back at a time

    async def delegate(self, parent: Task, child: Task) -> Result:
        return await self.scheduler._delegate(self, child)

    def ending(self) -> bool:
        """Cancelled by the scheduler or past its deadline (not by the body's own scopes)."""
        return self.closed or self.expired or self.entry.cancelling


@dataclass(eq=False, slots=True)
class _Lane:
    """One agent's waiting line and slot count."""

    agent: Agent
    running: int = 0
    queued: int = 0  # entries in `ready` still waiting (cancelled ones stay until popped)
    ready: list[tuple[int, int, _Entry]] = field(default_factory=list)
    resumers: deque[asyncio.Future[None]] = field(default_factory=deque)
    starting: int = 0  # workers created that have not taken an entry yet


class TaskHandle:
    """What `submit` returns: `await handle` gives the `Result`; `handle.cancel()` cancels."""

    __slots__ = ("id", "_future", "_scheduler")

    def __init__(self, task_id: str, future: asyncio.Future[Result], scheduler: Scheduler) -> None:
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

    def cancel(self) -> bool:
        return self._scheduler.cancel(self.id)


class Scheduler:
    """Runs tasks on a registry's agents, routed by `router`, traced to `store` (optional).

    `concurrency` bounds agents running at once across all lanes; each agent's
    `max_concurrency` bounds its own lane. `max_queue` bounds tasks waiting to start: `submit`
    waits for room (backpressure), `submit_nowait` raises `QueueFull`. A task waiting on a child
    (`ctx.delegate`) gives its slots back until the child is done, so delegation cannot deadlock.

    An attempt whose deadline fired is timed out, even if its body catches the cancellation and
    returns (the late output goes on its span). A body still running `cancel_grace` s after its
    cancellation is abandoned: its task fails at once; the body keeps its slots until it returns
    (the limits count bodies that run), counted in `stats["overdue"]` and logged.
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
    ) -> None:
        self.registry = registry
        self.tune_gc = tune_gc
        self.router = router
        self.store = store
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.concurrency = concurrency
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.hop_limit = hop_limit
        self.max_depth = max_depth
        self.ambiguous = ambiguous
        self.retry = retry or RetryPolicy()
        self.llm = llm
        self.services = services or {}
        self.run_id = run_id
        self.cancel_grace = cancel_grace
        self._overdue = 0  # bodies abandoned after ignoring their cancellation, still running
        self._route_inline = getattr(router, "blocking", True) is False
        self._lanes = {a.name: _Lane(a) for a in registry}
        self._live: dict[str, _Entry] = {}
        self._inbox: list[tuple[int, int, _Entry]] = []
        self._inbox_ready = asyncio.Event()
        self._seq = itertools.count()
        self._pending = 0  # in the inbox or a lane, not started
        self._running = 0
        self._space_waiters: deque[asyncio.Future[None]] = deque()
        self._starved: dict[str, _Lane] = {}  # lanes with work, blocked by the global limit
        self._idle = asyncio.Event()
        self._idle.set()
        self._intake: asyncio.Task[None] | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._closing = False

    # ---- submitting ---------------------------------------------------------------------

    async def submit(self, task: Task | str, **fields: Any) -> TaskHandle:
        """Queue a task (a `Task` or its text plus Task fields, or `timeout=` seconds)."""
        task = self._make_task(task, fields)
        await self._room()
        return self._admit(task)

    def submit_nowait(self, task: Task | str, **fields: Any) -> TaskHandle:
        task = self._make_task(task, fields)
        if self._pending >= self.max_queue:
            raise QueueFull(f"{self._pending} tasks are waiting (max_queue={self.max_queue})")
        return self._admit(task)

    async def run(self, task: Task | str, **fields: Any) -> Result:
        return await (await self.submit(task, **fields))

    def cancel(self, task_id: str) -> bool:
        """Cancel a queued or running task and, through it, its children."""
        e = self._live.get(task_id)
        if e is None:
            return False
        for child in list(e.children or ()):
            self.cancel(child)
        if e.runner is not None and not e.runner.done():
            e.cancelling = True
            e.runner.cancel()
        else:  # waiting in the inbox or a lane: left there, skipped when it comes up
            self._finish(e, TaskStatus.CANCELLED, error="cancelled before it started")
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

    async def resume(self, task: Task) -> TaskHandle:
        """Queue again a task recorded as unfinished (same id; its row goes back to queued)."""
        task = self._make_task(task, {})
        await self._room()
        return self._admit(task, resumed=True)

    async def _room(self) -> None:
        """Backpressure: wait while `max_queue` tasks are waiting to start."""
        while self._pending >= self.max_queue and not self._closing:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._space_waiters.append(waiter)
            await waiter
        if self._closing:
            raise SchedulerClosed("the scheduler is shutting down; no new tasks")

    def _admit(self, task: Task, depth: int = 0, resumed: bool = False) -> TaskHandle:
        if self._intake is None:
            self._start()
        if task.id in self._live:
            raise ValueError(f"task {task.id} is already queued or running")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        e = _Entry(task, future, depth=depth)
        self._live[task.id] = e
        self._idle.clear()
        if self.store is not None:
            self.store.task_queued(task, resumed=resumed)
        self._pending += 1
        e.waiting = True
        heapq.heappush(self._inbox, (-task.priority, next(self._seq), e))
        self._inbox_ready.set()
        return TaskHandle(task.id, future, self)

    # ---- routing, in micro-batches ------------------------------------------------------

    def _start(self) -> None:
        if self.tune_gc:
            _tune_gc()
        self._intake = asyncio.get_running_loop().create_task(self._intake_loop())

    async def _intake_loop(self) -> None:
        while True:
            if not self._inbox:
                self._inbox_ready.clear()
                await self._inbox_ready.wait()
                continue
            # Several routing batches share one wait for the store: that wait, not routing, is
            # what bounds a traced scheduler's throughput.
            n = min(len(self._inbox), self.batch_size * (4 if self.store is not None else 1))
            chunk = [heapq.heappop(self._inbox)[2] for _ in range(n)]
            if self.store is not None:
                # Written as queued before any agent sees it: `swarm resume` depends on it.
                await self.store.flush()
            for start in range(0, n, self.batch_size):
                batch = chunk[start : start + self.batch_size]
                try:
                    await self._route(batch)
                except Exception as exc:  # a broken router fails its batch, not the scheduler
                    log.exception("router failed")
                    for e in batch:
                        self._finish(e, TaskStatus.FAILED, error=f"router failed: {exc!r}")

    async def _route(self, batch: list[_Entry]) -> None:
        live = [e for e in batch if not e.finished]
        to_route = [e for e in live if e.task.agent is None]
        if to_route:
            texts = [e.task.text for e in to_route]
            if self._route_inline:
                decisions = self.router.route(texts)
            else:
                decisions = await asyncio.to_thread(self.router.route, texts)
            if len(decisions) != len(texts):
                raise ValueError(
                    f"router returned {len(decisions)} decisions for {len(texts)} texts"
                )
            for e, d in zip(to_route, decisions, strict=True):
                e.decision = d
        for e in live:
            if e.finished:  # cancelled while the router ran
                continue
            if e.decision is None:
                e.decision = Decision(agent=e.task.agent, confidence=1.0, status="forced")
            d = e.decision
            if self.store is not None:
                self.store.record_decision(e.task.id, d)
            if d.agent is None or (d.ambiguous and self.ambiguous == "reject"):
                self._finish(e, TaskStatus.REJECTED, error=d.reason)
            elif d.agent not in self._lanes:
                self._finish(
                    e,
                    TaskStatus.FAILED,
                    error=f"no agent named {d.agent!r} in this swarm "
                    f"(agents: {', '.join(sorted(self._lanes))})",
                )
            else:
                self._enqueue(e, self._lanes[d.agent])

    # ---- lanes and slots ----------------------------------------------------------------

    def _enqueue(self, e: _Entry, lane: _Lane) -> None:
        e.lane = lane
        lane.queued += 1
        heapq.heappush(lane.ready, (-e.task.priority, next(self._seq), e))
        self._pump(lane)

    def _pump(self, lane: _Lane) -> None:
        """Give free slots to tasks resuming after a delegation first, then to new workers."""
        limit = lane.agent.max_concurrency
        while lane.running < limit and self._running < self.concurrency:
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
            worker = asyncio.get_running_loop().create_task(self._work(lane))
            self._workers.add(worker)  # the loop keeps only weak references to tasks
            worker.add_done_callback(self._workers.discard)
        if (lane.queued > lane.starting or lane.resumers) and lane.running < limit:
            self._starved[lane.agent.name] = lane

    def _take(self, lane: _Lane) -> None:
        lane.running += 1
        self._running += 1

    def _release(self, lane: _Lane) -> None:
        lane.running -= 1
        self._running -= 1
        if not self._live and self._running == self._overdue:
            self._idle.set()
        # Lanes that waited for a global slot go first, so one busy agent cannot hog them all.
        while self._starved and self._running < self.concurrency:
            name = next(iter(self._starved))
            self._pump(self._starved.pop(name))
        self._pump(lane)

    async def _reacquire(self, lane: _Lane) -> None:
        if lane.running < lane.agent.max_concurrency and self._running < self.concurrency:
            self._take(lane)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.resumers.append(waiter)
        self._starved.setdefault(lane.agent.name, lane)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(lane)  # handed a slot just as we were cancelled
            raise

    def _unwait(self, e: _Entry) -> None:
        """`e` stops waiting: it starts, or it finished (cancelled, rejected) before it could."""
        e.waiting = False
        self._pending -= 1
        if e.lane is not None:
            e.lane.queued -= 1
            e.lane = None
        self._wake_submitters()

    def _wake_submitters(self) -> None:
        while self._space_waiters and self._pending < self.max_queue:
            waiter = self._space_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # ---- running one task ---------------------------------------------------------------

    async def _work(self, lane: _Lane) -> None:
        """A worker holds one of the lane's slots and runs its waiting tasks one after another.

        Reusing workers instead of a new asyncio task per task halves the per-task overhead. It
        leaves when the lane is empty, when a lane starved of global slots is waiting, or when its
        task gave the slot back (cancelled while waiting on a child).
        """
        lane.starting -= 1
        me = asyncio.current_task()
        assert me is not None
        held = True
        try:
            while lane.ready:
                e = heapq.heappop(lane.ready)[2]
                if e.finished:
                    continue
                self._unwait(e)
                e.runner, e.holds_slot = me, True
                await self._execute(e, lane)
                e.runner = None
                held, e.holds_slot = e.holds_slot, False
                while me.cancelling():  # a cancel meant for that task, not for the worker
                    me.uncancel()
                if not held or self._starved:
                    break
        finally:
            if held:
                self._release(lane)

    async def _execute(self, e: _Entry, lane: _Lane) -> None:
        agent = lane.agent
        outcome: _Outcome | Handoff
        try:
            outcome = await self._attempt_all(e, lane)
        except asyncio.CancelledError:
            outcome = (TaskStatus.CANCELLED, None, "cancelled")
        except Exception as exc:  # a bug in a policy or sink must not take the scheduler down
            log.exception("scheduler failed while running %s", e.task.id)
            outcome = (TaskStatus.FAILED, None, repr(exc))
        if isinstance(outcome, Handoff):
            self._hand_off(e, agent, outcome)
        else:
            self._finish(e, *outcome)

    async def _attempt_all(self, e: _Entry, lane: _Lane) -> _Outcome | Handoff:
        task, agent = e.task, lane.agent
        e.hops.append(agent.name)
        attempt = 0
        while True:
            attempt += 1
            e.attempts += 1
            if not e.holds_slot:  # the last attempt ended while it waited on children
                await self._reacquire(lane)
                e.holds_slot = True
            now = self.clock.time()
            end = task.deadline
            if end is not None and now >= end:
                return self._failed(e, "deadline exceeded before the agent could start")
            if agent.timeout is not None and (end is None or now + agent.timeout < end):
                end = now + agent.timeout
            try:
                out = await self._attempt(_Attempt(self, e, lane, end), attempt)
                return self._outcome(e, agent, out)
            except TimeoutError as exc:
                error: Exception = exc
                late = task.deadline is not None and self.clock.time() >= task.deadline
                reason = "deadline exceeded" if late else f"timed out after {agent.timeout:g}s"
                if isinstance(exc, _LateTimeout):
                    reason += f" ({exc})"
            except Exception as exc:
                error, reason = exc, f"{type(exc).__name__}: {exc}"
            if e.finished:  # abandoned: its task was failed while the body ran on
                return self._failed(e, reason)
            if not isinstance(error, agent.retry_on) or attempt > agent.retries:
                return self._failed(e, reason)
            delay = self.retry.delay(attempt)
            if task.deadline is not None and self.clock.time() + delay >= task.deadline:
                return self._failed(e, f"{reason}; no time left before the deadline to retry")
            await self.clock.sleep(delay)

    async def _attempt(self, att: _Attempt, attempt: int) -> Any:
        """One call of `agent.run`, under its deadline, inside an `agent` span when traced.

        Raises `_LateTimeout` (a TimeoutError) when the deadline fired but the body went on and
        returned (it caught the cancellation, or blocked the loop past the deadline).
        """
        task, agent = att.entry.task, att.lane.agent
        ctx = Context(
            task,
            agent=agent.name,
            attempt=attempt,
            scheduler=att,
            sink=self.store,
            clock=self.clock,
            services=self.services,
        )
        if self.llm is not None:
            bind = getattr(self.llm, "bind", None)
            ctx.llm = bind(ctx) if callable(bind) else self.llm
        if self.store is None:
            return await self._body(att, ctx)
        self.store.task_started(task.id, agent.name, att.entry.attempts)
        span = Span("agent", agent.name, task.id, task.run_id, attributes={"attempt": attempt})
        token = enter_span(span)
        try:
            return await self._body(att, ctx)
        except BaseException as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            span.status = "cancelled" if cancelled else "error"
            span.error = "cancelled" if cancelled else repr(exc)
            if isinstance(exc, _LateTimeout):
                span.error = f"TimeoutError: {exc}"
                span.set(late_by_s=round(exc.late_by, 3), late_output=_jsonable(exc.output))
            elif not cancelled and not att.expired:  # raised by the agent: where, exactly
                span.set(traceback=_format_traceback(exc))
            raise
        finally:
            leave_span(token)
            span.ended_at = time.time()
            self.store.record_span(span)

    async def _body(self, att: _Attempt, ctx: Context) -> Any:
        me = asyncio.current_task()
        assert me is not None
        if att.end is not None:
            att.timer = self.clock.call_at(att.end, lambda: self._expire(att, me))
        try:
            out = await att.lane.agent.run(ctx.task, ctx)
        except asyncio.CancelledError:
            if att.expired and me.uncancel() == 0:  # our cancellation, nobody else's
                raise TimeoutError from None
            raise
        finally:
            att.closed = True
            if att.timer is not None:
                att.timer.cancel()
            if att.abandoned:
                self._overdue -= 1
                if not self._live and self._running == self._overdue:
                    self._idle.set()
        if att.expired or (att.end is not None and self.clock.time() >= att.end):
            if att.expired:
                me.uncancel()  # the body swallowed it
            assert att.end is not None
            raise _LateTimeout(out, self.clock.time() - att.end)
        return out

    def _expire(self, att: _Attempt, runner: asyncio.Task[Any]) -> None:
        """The attempt's deadline: cancel the body, and give it `cancel_grace` s to end."""
        att.expired = True
        runner.cancel()
        assert att.end is not None
        att.timer = self.clock.call_at(att.end + self.cancel_grace, lambda: self._abandon(att))

    def _abandon(self, att: _Attempt) -> None:
        """A body still running `cancel_grace` s after its cancellation: fail its task now.

        The body keeps its slots until it really returns (the limits count bodies that run),
        which `stats["overdue"]` and a warning make visible.
        """
        if att.closed:
            return
        att.abandoned = True
        self._overdue += 1
        agent = att.lane.agent
        error = (
            f"timed out after {agent.timeout:g}s; the agent ignored its cancellation for "
            f"{self.cancel_grace:g}s and was abandoned (it keeps its slot until it returns)"
        )
        log.warning("task %s: %s", att.entry.task.id, error)
        self._finish(att.entry, TaskStatus.FAILED, error=error)

    def _outcome(self, e: _Entry, agent: Agent, out: Any) -> _Outcome | Handoff:
        if isinstance(out, Handoff):
            return out
        if isinstance(out, Result):
            out = out.model_dump(mode="json")
            return (TaskStatus(out["status"]), out["output"], out["error"])
        if out is None or isinstance(out, str | int | float | bool):
            return (TaskStatus.DONE, out, None)
        try:
            json.dumps(out)
        except (TypeError, ValueError):
            return self._failed(
                e,
                f"agent {agent.name!r} returned {type(out).__name__}; expected a Result, "
                "a Handoff, a string or a JSON-compatible value",
            )
        return (TaskStatus.DONE, out, None)

    def _failed(self, e: _Entry, error: str) -> _Outcome:
        return (TaskStatus.FAILED, None, error)

    def _hand_off(self, e: _Entry, source: Agent, handoff: Handoff) -> None:
        target = handoff.agent
        chain = " -> ".join([*e.hops, target])
        if target not in self._lanes:
            self._finish(
                e, TaskStatus.FAILED, error=f"handoff to unknown agent {target!r} ({chain})"
            )
        elif target in e.hops:
            self._finish(e, TaskStatus.FAILED, error=f"handoff loop: {chain}")
        elif len(e.hops) > self.hop_limit:
            self._finish(
                e, TaskStatus.FAILED, error=f"more than {self.hop_limit} handoffs: {chain}"
            )
        else:
            if handoff.payload:
                e.task.payload = {**e.task.payload, **handoff.payload}
            if self.store is not None:
                span = Span("agent", f"handoff:{source.name}->{target}", e.task.id, e.task.run_id)
                span.set(reason=handoff.reason, source=source.name, target=target)
                span.ended_at = span.started_at
                self.store.record_span(span)
            self._pending += 1
            e.waiting = True
            self._enqueue(e, self._lanes[target])

    def _finish(
        self, e: _Entry, status: TaskStatus, output: Any = None, error: str | None = None
    ) -> None:
        if e.finished:
            return
        e.finished = True
        if e.waiting:
            self._unwait(e)
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
        if self.store is not None:
            self.store.task_finished(result)
        if not e.future.done():
            e.future.set_result(result)
        del self._live[e.task.id]
        if e.children:
            for child in list(e.children):  # nothing outlives its parent
                self.cancel(child)
        if e.task.parent is not None:
            parent = self._live.get(e.task.parent)
            if parent is not None and parent.children:
                parent.children.discard(e.task.id)
        if not self._live and self._running == self._overdue:
            self._idle.set()

    # ---- delegation (called through Context) --------------------------------------------

    async def _delegate(self, att: _Attempt, child: Task) -> Result:
        p = att.entry
        if att.closed:
            raise SchedulerClosed(f"the attempt of task {p.task.id} has ended; it cannot delegate")
        if p.depth + 1 > self.max_depth:
            return Result(
                task_id=child.id,
                status=TaskStatus.FAILED,
                error=f"delegation deeper than {self.max_depth} levels",
            )
        # Children bypass the queue bound: their parent already holds its place.
        handle = self._admit(child, depth=p.depth + 1)
        if p.children is None:
            p.children = set()
        p.children.add(child.id)
        att.outstanding += 1
        if p.holds_slot:  # the first outstanding delegation gives the slots back
            p.holds_slot = False
            self._release(att.lane)
        try:
            result = await asyncio.shield(handle._future)
        except asyncio.CancelledError:
            att.outstanding -= 1
            self.cancel(child.id)
            # The body's own scope gave up on this child (a timeout around the call) and the body
            # goes on: it needs its slots. An attempt that is ending takes nothing back.
            if att.outstanding == 0 and not att.ending():
                await self._take_back(att)
            raise
        att.outstanding -= 1
        if att.outstanding == 0:
            await self._take_back(att)
        return result

    async def _take_back(self, att: _Attempt) -> None:
        """The last outstanding delegation returned: take the attempt's slots again, once."""
        if att.lock is None:
            att.lock = asyncio.Lock()
        interrupted: asyncio.CancelledError | None = None
        while True:
            try:
                async with att.lock:
                    e = att.entry
                    if not (e.holds_slot or att.outstanding or att.closed):
                        await self._reacquire(att.lane)
                        if att.outstanding or att.closed:  # delegated again, or ended, meanwhile
                            self._release(att.lane)
                        else:
                            e.holds_slot = True
                break
            except asyncio.CancelledError as exc:
                if att.ending():
                    raise
                # The body's own scope (a timeout around the call): the body goes on, so it gets
                # the cancellation once it holds its slots again.
                interrupted = exc
        if interrupted is not None:
            raise interrupted

    # ---- shutting down ------------------------------------------------------------------

    async def join(self) -> None:
        """Wait until every submitted task has finished."""
        await self._idle.wait()

    async def close(self, *, drain: bool = True, grace: float = 10.0) -> None:
        """Stop taking tasks; let running ones finish (`drain`) within `grace` s; cancel the rest.

        Tasks still unfinished after that are recorded as cancelled ("scheduler shut down").
        """
        self._closing = True
        self._wake_submitters()
        for waiter in self._space_waiters:
            if not waiter.done():
                waiter.set_exception(SchedulerClosed("the scheduler is shutting down"))
        if drain and self._live:
            try:
                async with self.clock.timeout_at(self.clock.time() + grace):
                    await self._idle.wait()
            except TimeoutError:
                log.warning("shutdown: %d tasks still running after %ss", len(self._live), grace)
        runners = []
        for e in list(self._live.values()):
            if e.runner is not None and not e.runner.done():
                runners.append(e.runner)
                e.cancelling = True
                e.runner.cancel()
            else:
                self._finish(e, TaskStatus.CANCELLED, error="scheduler shut down")
        if runners:
            await asyncio.wait(runners, timeout=grace)
        for e in list(self._live.values()):  # runners that ignored cancellation
            self._finish(e, TaskStatus.CANCELLED, error="scheduler shut down")
        if self._intake is not None:
            self._intake.cancel()
            try:
                await self._intake
            except asyncio.CancelledError:
                pass
            self._intake = None
        if self.store is not None:
            await self.store.flush()

    @property
    def stats(self) -> dict[str, int]:
        """Tasks not finished (`live`), waiting to start, and holding a slot (`running`)."""
        return {
            "live": len(self._live),
            "waiting": self._pending,
            "running": self._running,
            "overdue": self._overdue,
        }

    def running_by_agent(self) -> dict[str, int]:
        """Slots held per agent: bodies running, not counting tasks waiting on children."""
        return {name: lane.running for name, lane in self._lanes.items()}


def _tune_gc() -> None:
    """Make CPython's full garbage collections rarer, unless the application chose thresholds.

    Under load the scheduler keeps tens of thousands of small objects alive (queued tasks, their
    futures and results); with the default thresholds every full collection walks all of them,
    which cost half the throughput in `benchmarks/scheduler.py`. Young collections are untouched,
    so cyclic garbage is still found quickly.
    """
    if gc.get_threshold() == (700, 10, 10):
        gc.set_threshold(700, 10, 100)


_OWN_FRAMES = {__file__, agents_base.__file__}  # the scheduler, and `@agent`'s wrapper


def _format_traceback(exc: BaseException, limit: int = 30) -> str:
    """The traceback of an exception an agent raised, from the agent's own frames on, its last
    `limit` frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in _OWN_FRAMES:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb, limit=-limit))
