"""Attempts: one call of `agent.run` under its deadline, retried by the agent's rules, and the
delegations it makes (which give its slots back while they are outstanding).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import traceback
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from swarm.agents import base as agents_base
from swarm.clock import Timer
from swarm.context import Context, Span, _jsonable, enter_span, leave_span
from swarm.errors import ConfigError, SchedulerClosed
from swarm.models import Handoff, Result, Task, TaskStatus
from swarm.scheduler.slots import Entry, Lane

if TYPE_CHECKING:
    from swarm.scheduler.core import Scheduler

__all__ = ["Attempt", "AttemptTimedOut", "LateTimeout", "Outcome", "run_attempts"]

log = logging.getLogger("swarm.scheduler")

Outcome = tuple[TaskStatus, Any, str | None]
"""status, output, error: what an attempt came to, before it becomes a Result."""


class AttemptTimedOut(TimeoutError):
    """The attempt's deadline fired (raised by the scheduler, not by the agent's own code)."""


class LateTimeout(AttemptTimedOut):
    """The deadline fired, yet the body went on and returned: the task did not finish in time."""

    def __init__(self, output: Any, late_by: float) -> None:
        super().__init__(f"the agent went on past its deadline and returned {late_by:.2f}s late")
        self.output = output
        self.late_by = late_by


async def run_attempts(s: Scheduler, e: Entry, lane: Lane) -> Outcome | Handoff:
    """Attempts of `lane`'s agent on `e` until one succeeds, the retries or the deadline run out."""
    task, agent = e.task, lane.agent
    e.hops = (*e.hops, agent.name)
    if e.resumed and s.approvals is not None:  # once per task, not per hop
        e.resumed = False
        e.replay = await s.approvals.replay_for(task.id)
    n = 0
    while True:
        n += 1
        e.attempts += 1
        if not e.holds_slot:  # the last attempt ended while it waited on children
            await s.slots.reacquire(lane)
            e.holds_slot = True
        now = s.clock.time()
        end = task.deadline
        if end is not None and now >= end:
            return failed("deadline exceeded before the agent could start")
        if agent.timeout is not None and (end is None or now + agent.timeout < end):
            end = now + agent.timeout
        attempt = Attempt(s, e, lane, end)
        try:
            out = await attempt.run(n)
            return outcome(agent.name, out)
        except AttemptTimedOut as exc:
            error: Exception = exc
            reason = timed_out(agent.timeout, task.deadline, attempt.end)
            if isinstance(exc, LateTimeout):
                reason += f" ({exc})"
        except Exception as exc:  # an agent's own TimeoutError included
            error, reason = exc, f"{type(exc).__name__}: {exc}"
        if e.finished:  # abandoned: its task was failed while the body ran on
            return failed(reason)
        if not isinstance(error, agent.retry_on) or n > agent.retries:
            return failed(reason)
        delay = s.retry.delay(n)
        if task.deadline is not None and s.clock.time() + delay >= task.deadline:
            return failed(f"{reason}; no time left before the deadline to retry")
        await s.clock.sleep(delay)


def timed_out(timeout: float | None, deadline: float | None, end: float | None) -> str:
    """Why an attempt ending at `end` was stopped: the task's deadline, or the agent's timeout."""
    if timeout is None or (deadline is not None and end is not None and end >= deadline):
        return "deadline exceeded"
    return f"timed out after {timeout:g}s"


def outcome(agent: str, out: Any) -> Outcome | Handoff:
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
        return failed(
            f"agent {agent!r} returned {type(out).__name__}; expected a Result, "
            "a Handoff, a string or a JSON-compatible value"
        )
    return (TaskStatus.DONE, out, None)


def failed(error: str) -> Outcome:
    return (TaskStatus.FAILED, None, error)


@dataclass(eq=False, slots=True)
class Attempt:
    """One call of `agent.run`; its `Context` delegates through it.

    While at least one of its delegations is outstanding the task gives its agent slot and its
    global slot back (once), so children that need the same agent or the last global slot cannot
    deadlock behind it; when the last one returns it takes them back (once). A delegation that
    returns after the attempt ended takes nothing back.

    Its deadline (`end`) cancels the body; a body that returns anyway is `LateTimeout`. One still
    running `cancel_grace` s later is abandoned: its task fails then, and the body keeps its slots
    until it returns (the limits count bodies that run).

    While it waits for a person (`ctx.approve`) it gives its slots back as a delegation does, and
    its deadline is paused: only the task's own deadline runs meanwhile, and the agent's timeout
    is moved on by the time it waited.
    """

    s: Scheduler
    entry: Entry
    lane: Lane
    end: float | None  # its deadline on the scheduler's clock
    outstanding: int = 0  # delegations not returned
    closed: bool = False  # the body returned or raised
    expired: bool = False  # its deadline fired
    abandoned: bool = False
    timer: Timer | None = None  # the deadline, then the grace
    lock: asyncio.Lock | None = None  # made on the first delegation: one take-back at a time
    runner: asyncio.Task[Any] | None = None  # the task that runs the body
    asking: int = 0  # approvals it waits on
    paused: tuple[float, float] | None = None  # (since, end) while its clock is paused

    def run(self, n: int) -> Coroutine[Any, Any, Any]:
        """Call the body as attempt number `n` of this hop, in an `agent` span when traced or
        watched (anyone subscribed to the scheduler's events).

        A plain function returning the coroutine to await: untraced, that is one frame less
        per task."""
        s, task, agent = self.s, self.entry.task, self.lane.agent
        ctx = Context(
            task,
            agent=agent.name,
            attempt=n,
            scheduler=self,
            sink=s.store,
            clock=s.clock,
            services=s.services,
            events=s.events,
            replay=self.entry.replay,
        )
        if s.llm is not None:
            bind = getattr(s.llm, "bind", None)
            ctx.llm = bind(ctx) if callable(bind) else s.llm
        if s.events.active:
            s.events.emit_task("started", task, {"agent": agent.name, "attempt": n})
        elif s.store is None:
            return self._body(ctx)
        return self._traced(ctx, n)

    async def _traced(self, ctx: Context, n: int) -> Any:
        s, task, agent = self.s, self.entry.task, self.lane.agent
        if s.store is not None:
            s.store.task_started(task.id, agent.name, self.entry.attempts)
        span = Span("agent", agent.name, task.id, task.run_id, attributes={"attempt": n})
        token = enter_span(span)
        try:
            return await self._body(ctx)
        except BaseException as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            span.status = "cancelled" if cancelled else "error"
            span.error = "cancelled" if cancelled else repr(exc)
            if isinstance(exc, LateTimeout):
                span.error = f"TimeoutError: {exc}"
                span.set(late_by_s=round(exc.late_by, 3), late_output=_jsonable(exc.output))
            elif not cancelled and not self.expired:  # raised by the agent: where, exactly
                span.set(traceback=format_traceback(exc))
            raise
        finally:
            leave_span(token)
            span.ended_at = time.time()
            ctx.record_span(span)

    async def _body(self, ctx: Context) -> Any:
        me = asyncio.current_task()
        assert me is not None
        self.runner = me
        clock = self.s.clock
        if self.end is not None:
            self.timer = clock.call_at(self.end, lambda: self._expire(me))
        try:
            out = await self.lane.agent.run(ctx.task, ctx)
        except BaseException as exc:
            if not self.expired:
                raise
            if me.uncancel() > 0 and isinstance(exc, asyncio.CancelledError):
                raise  # cancelled by someone else too: that wins
            # Whatever the body did after its deadline fired (raised, or let the cancellation
            # through), it timed out.
            raise AttemptTimedOut from (None if isinstance(exc, asyncio.CancelledError) else exc)
        finally:
            self.closed = True
            if self.timer is not None:
                self.timer.cancel()
            if self.abandoned:
                self.s.slots.abandoned(-1)
        if self.expired or (self.end is not None and clock.time() >= self.end):
            if self.expired:
                me.uncancel()  # the body swallowed it
            assert self.end is not None
            raise LateTimeout(out, clock.time() - self.end)
        return out

    def _expire(self, runner: asyncio.Task[Any]) -> None:
        self.expired = True
        runner.cancel()
        assert self.end is not None
        self.timer = self.s.clock.call_at(self.end + self.s.cancel_grace, self._abandon)

    def _abandon(self) -> None:
        if self.closed:
            return
        self.abandoned = True
        self.s.slots.abandoned(+1)
        error = (
            f"{timed_out(self.lane.agent.timeout, self.entry.task.deadline, self.end)}; the agent "
            f"ignored its cancellation for {self.s.cancel_grace:g}s and was abandoned "
            "(it keeps its slot until it returns)"
        )
        log.warning("task %s: %s", self.entry.task.id, error)
        self.s.finish(self.entry, TaskStatus.FAILED, error=error)

    def ending(self) -> bool:
        """Ended, past its deadline or cancelled by the scheduler (not by the body's scopes)."""
        return self.closed or self.expired or self.entry.cancelling

    # ---- delegation (called through Context) --------------------------------------------

    async def delegate(self, parent: Task, child: Task) -> Result:
        s, p = self.s, self.entry
        if self.closed or p.finished:
            raise SchedulerClosed(f"the attempt of task {p.task.id} has ended; it cannot delegate")
        if p.depth + 1 > s.max_depth:
            return Result(
                task_id=child.id,
                status=TaskStatus.FAILED,
                error=f"delegation deeper than {s.max_depth} levels",
            )
        if s.events.active:
            data = {"child_id": child.id, "text": child.text, "agent": child.agent}
            s.events.emit_task("delegated", parent, data)
        # Children bypass the queue bound: their parent already holds its place.
        handle = s.admit(child, depth=p.depth + 1)
        if p.children is None:
            p.children = set()
        p.children.add(child.id)
        self.outstanding += 1
        if p.holds_slot:  # the first outstanding delegation gives the slots back
            p.holds_slot = False
            s.slots.release(self.lane)
        try:
            result = await asyncio.shield(handle._future)
        except asyncio.CancelledError:
            self.outstanding -= 1
            s.cancel(child.id)
            # The body's own scope gave up on this child (a timeout around the call) and the body
            # goes on: it needs its slots. An attempt that is ending takes nothing back.
            if self.outstanding == 0 and not self.ending():
                await self._take_back()
            raise
        self.outstanding -= 1
        if self.outstanding == 0:
            await self._take_back()
        return result

    # ---- approvals (called through Context) ---------------------------------------------

    async def approve(
        self,
        task: Task,
        question: str,
        *,
        occurrence: int,
        expires_in: float | None,
        details: dict[str, Any],
    ) -> dict[str, Any]:
        """Store the question (or find it again), wait for its decision with the slots given
        back; the approval row as decided (`swarm.trace.approvals`)."""
        s, e = self.s, self.entry
        if s.approvals is None:
            raise ConfigError(
                "ctx.approve needs a trace store: the question and the waiting task are stored so "
                "that they survive a restart (give the swarm a db)"
            )
        if self.closed or e.finished:
            raise SchedulerClosed(f"the attempt of task {e.task.id} has ended; it cannot ask")
        row = await s.approvals.open(
            task,
            self.lane.agent.name,
            question,
            occurrence=occurrence,
            expires_in=expires_in,
            details=details,
        )
        if row["status"] != "waiting":  # decided before a restart, or expired meanwhile
            return row
        self.outstanding += 1
        if e.holds_slot:  # a person's slowness never holds a slot
            e.holds_slot = False
            s.slots.release(self.lane)
        self._pause()
        e.asking += 1
        try:
            row = await s.approvals.wait(row, task)
        except asyncio.CancelledError:
            e.asking -= 1
            self.outstanding -= 1
            self._unpause()
            if s.closing:  # a restart, not a decision: the task stays waiting in the store
                e.left_waiting = True
            else:
                await s.approvals.withdraw(row, task)
            if self.outstanding == 0 and not self.ending():
                await self._take_back()
            raise
        e.asking -= 1
        self.outstanding -= 1
        self._unpause()
        if self.outstanding == 0:
            await self._take_back()
        return row

    def _pause(self) -> None:
        """Stop the attempt's clock while it waits for a person; the task's deadline still runs
        (`end` is the deadline meanwhile, so a deadline that fires reads as one)."""
        self.asking += 1
        if self.asking > 1 or self.end is None or self.expired or self.runner is None:
            return
        clock, runner, deadline = self.s.clock, self.runner, self.entry.task.deadline
        self.paused = (clock.time(), self.end)
        if self.timer is not None:
            self.timer.cancel()
        self.end, self.timer = deadline, None
        if deadline is not None:
            self.timer = clock.call_at(deadline, lambda: self._expire(runner))

    def _unpause(self) -> None:
        self.asking -= 1
        if self.asking or self.paused is None:
            return
        clock, runner, deadline = self.s.clock, self.runner, self.entry.task.deadline
        (since, end), self.paused = self.paused, None
        if self.expired or self.closed or runner is None:
            return
        if self.timer is not None:
            self.timer.cancel()
        end += clock.time() - since
        self.end = end if deadline is None else min(end, deadline)
        self.timer = clock.call_at(self.end, lambda: self._expire(runner))

    async def _take_back(self) -> None:
        """The last outstanding delegation returned: take the slots again, once."""
        if self.lock is None:
            self.lock = asyncio.Lock()
        interrupted: asyncio.CancelledError | None = None
        while True:
            try:
                async with self.lock:
                    e = self.entry
                    if not (e.holds_slot or self.outstanding or self.closed):
                        await self.s.slots.reacquire(self.lane)
                        if self.outstanding or self.closed:  # delegated again, or ended, meanwhile
                            self.s.slots.release(self.lane)
                        else:
                            e.holds_slot = True
                break
            except asyncio.CancelledError as exc:
                if self.ending():
                    raise
                # The body's own scope (a timeout around the call): the body goes on, so it gets
                # the cancellation once it holds its slots again.
                interrupted = exc
        if interrupted is not None:
            raise interrupted


# The scheduler's own frames, and `@agent`'s wrapper: left out of an agent's traceback.
_OWN_FILES = (os.path.dirname(__file__) + os.sep, agents_base.__file__)


def format_traceback(exc: BaseException, limit: int = 30) -> str:
    """The traceback of an exception an agent raised, from the agent's own frames on (its last
    `limit` frames), as `traceback.format_exception` writes it."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_OWN_FILES):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb, limit=-limit))
