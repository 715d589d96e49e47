"""An attempt whose deadline fired is timed out, whatever its body does after the cancellation.

The agents of /work/shared/cases/timeout_swallowed, in virtual time: one that sleeps past its
timeout, one that catches the cancellation and returns late, one that blocks the loop past it,
and one that ignores its cancellation for good (abandoned after `cancel_grace`).
"""

from __future__ import annotations

import asyncio
import time

from swarm import AgentRegistry, RetryPolicy, Scheduler, TaskStatus, agent
from swarm.testing import FakeRouter, VirtualClock


@agent(timeout=0.5)
async def slow(task, ctx):
    await ctx.clock.sleep(3)
    return "finished late"


@agent(timeout=0.5)
async def stubborn(task, ctx):
    try:
        await ctx.clock.sleep(3)
    except asyncio.CancelledError:
        pass
    await ctx.clock.sleep(1.5)
    return "finished late anyway"


@agent(timeout=0.05)
async def blocking(task, ctx):
    time.sleep(0.15)  # noqa: ASYNC251 (on purpose: the deadline cannot fire until it returns)
    return "finished late (blocking)"


def make(agents, clock=None, **options) -> Scheduler:
    registry = AgentRegistry(agents)
    return Scheduler(registry, FakeRouter(default=registry.names[0]), clock=clock, **options)


async def test_an_agent_that_sleeps_past_its_timeout_times_out(clock: VirtualClock) -> None:
    s = make([slow], clock)
    r = await s.run("slow request")
    assert r.status is TaskStatus.FAILED and r.error == "timed out after 0.5s"
    assert clock.time() == 0.5
    await s.close()


async def test_swallowing_the_cancellation_does_not_make_a_late_answer_done(
    clock: VirtualClock, store
) -> None:
    s = make([stubborn], clock, store=store)
    r = await s.run("stubborn request")
    assert r.status is TaskStatus.FAILED and r.output is None
    assert r.error is not None and r.error.startswith("timed out after 0.5s")
    assert "returned 1.50s late" in r.error
    await s.close()
    (span,) = [sp for sp in store.spans(task_id=r.task_id) if sp["kind"] == "agent"]
    assert span["status"] == "error"
    assert span["attributes"]["late_output"] == "finished late anyway"
    assert span["attributes"]["late_by_s"] == 1.5


async def test_a_late_attempt_is_retried_like_any_timeout(clock: VirtualClock) -> None:
    @agent(timeout=0.5, retries=1, retry_on=(TimeoutError,))
    async def stubborn_once(task, ctx):
        if ctx.attempt == 1:
            try:
                await ctx.clock.sleep(3)
            except asyncio.CancelledError:
                return "late"
        return "on time"

    s = make([stubborn_once], clock, retry=RetryPolicy(jitter=False))
    r = await s.run("x")
    assert r.ok and r.output == "on time" and r.attempts == 2
    await s.close()


async def test_an_agent_that_blocks_the_loop_past_its_timeout_times_out() -> None:
    s = make([blocking])
    r = await s.run("blocking request")
    assert r.status is TaskStatus.FAILED
    assert r.error is not None and r.error.startswith("timed out after 0.05s")
    await s.close()


async def test_a_body_that_never_stops_is_abandoned_after_the_grace(clock: VirtualClock) -> None:
    release = asyncio.Event()

    @agent(timeout=1, max_concurrency=1)
    async def deaf(task, ctx):
        while not release.is_set():
            try:
                await ctx.clock.sleep(100)
            except asyncio.CancelledError:
                continue
        return "done at last"

    s = make([deaf], clock, cancel_grace=2)
    first = await s.submit("first")
    second = await s.submit("second")
    r = await first
    assert r.status is TaskStatus.FAILED and clock.time() == 3
    assert r.error is not None and "ignored its cancellation for 2s and was abandoned" in r.error
    # The abandoned body still runs and still counts against the limits, visibly.
    assert s.stats["overdue"] == 1 and s.running_by_agent() == {"deaf": 1}
    assert not second.done()
    release.set()
    r2 = await second
    assert r2.ok and r2.output == "done at last"  # it had to wait for the abandoned body
    await s.join()
    assert s.stats == {"live": 0, "waiting": 0, "running": 0, "overdue": 0}
    await s.close()


async def test_close_waits_a_bounded_time_for_a_body_that_ignores_cancellation() -> None:
    let_go = asyncio.Event()

    @agent(timeout=None)
    async def deaf(task, ctx):
        while not let_go.is_set():
            try:
                await asyncio.sleep(0.005)
            except asyncio.CancelledError:
                continue
        return "finally"

    s = make([deaf])
    h = await s.submit("x")
    await asyncio.sleep(0.02)
    start = time.perf_counter()
    await s.close(drain=False, grace=0.05)
    assert time.perf_counter() - start < 1
    r = await h
    assert r.status is TaskStatus.CANCELLED and r.error == "scheduler shut down"
    let_go.set()
    await asyncio.sleep(0.05)  # the body ends on its own; its worker and the group with it
    assert s.stats == {"live": 0, "waiting": 0, "running": 0, "overdue": 0}


async def test_raising_after_the_deadline_is_still_a_timeout(clock: VirtualClock) -> None:
    @agent(timeout=0.5)
    async def sulks(task, ctx):
        try:
            await ctx.clock.sleep(3)
        except asyncio.CancelledError:
            raise ValueError("interrupted") from None
        return "never"

    s = make([sulks], clock)
    r = await s.run("x")
    assert r.status is TaskStatus.FAILED and r.error == "timed out after 0.5s"
    await s.close()


async def test_an_agents_own_timeout_error_is_its_error_not_a_deadline(clock: VirtualClock) -> None:
    @agent(timeout=None)
    async def upstream(task, ctx):
        raise TimeoutError("the bank did not answer")

    s = make([upstream], clock)
    r = await s.run("x")
    assert r.status is TaskStatus.FAILED and r.error == "TimeoutError: the bank did not answer"
    await s.close()


async def test_abandoning_under_a_task_deadline_says_so(clock: VirtualClock) -> None:
    @agent(timeout=None)
    async def deaf(task, ctx):
        for _ in range(3):
            try:
                await ctx.clock.sleep(100)
            except asyncio.CancelledError:
                continue
        return "late"

    s = make([deaf], clock, cancel_grace=1)
    r = await s.run("x", timeout=2)
    assert r.status is TaskStatus.FAILED and clock.time() == 3
    assert r.error is not None and r.error.startswith("deadline exceeded; the agent ignored")
    await s.join()
    await s.close()
