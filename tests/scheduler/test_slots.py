"""Slot limits hold under any mix of parallel delegation, handoff, retry, timeout and cancellation.

A probe around every stretch of an agent body that runs (not waiting on children) counts bodies
per agent and in all; hypothesis builds random trees of work and checks, at every step and at the
end, that the limits held and that every counter came back to zero. Virtual time keeps it fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarm import AgentRegistry, Handoff, Result, Retryable, Scheduler, TaskStatus, agent
from swarm.testing import FakeRouter, VirtualClock

NAMES = ("a", "b", "c")
TERMINAL = {TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.REJECTED}


def counters(s: Scheduler) -> dict[str, int]:
    """Every count the scheduler keeps: waiting, running in all, running per agent."""
    return {**s.stats, **{f"running:{name}": n for name, n in s.running_by_agent().items()}}


class Probe:
    """Counts agent bodies that are running and checks the limits each time one starts."""

    def __init__(self, limits: dict[str, int], concurrency: int) -> None:
        self.limits = limits
        self.concurrency = concurrency
        self.bodies: Counter[str] = Counter()
        self.scheduler: Scheduler | None = None
        self.violations: list[str] = []
        self.checks = 0

    @contextlib.contextmanager
    def running(self, name: str) -> Iterator[None]:
        self.bodies[name] += 1
        self.check()
        try:
            yield
        finally:
            self.bodies[name] -= 1
            self.check()

    def check(self) -> None:
        self.checks += 1
        for name, n in self.bodies.items():
            if n > self.limits[name]:
                self.violations.append(
                    f"{n} bodies of {name} (max_concurrency={self.limits[name]})"
                )
        if sum(self.bodies.values()) > self.concurrency:
            self.violations.append(
                f"{sum(self.bodies.values())} bodies (concurrency={self.concurrency})"
            )
        assert self.scheduler is not None
        for key, n in counters(self.scheduler).items():
            if n < 0:
                self.violations.append(f"{key} = {n}")


def build(
    probe: Probe, limits: dict[str, int], timeouts: dict[str, float | None], retries: dict[str, int]
) -> list[Any]:
    """Three agents that all follow the plan in their task's payload."""

    async def body(task, ctx) -> Any:
        plan = task.payload["plan"]
        with probe.running(ctx.agent):
            await ctx.clock.sleep(plan["work"])
            if plan.get("hang") and ctx.attempt == 1:
                await ctx.clock.sleep(1000)
        children = plan.get("children") or []
        if children:
            # Outside the probe: a body waiting on its children holds no slot.
            await asyncio.gather(*(delegate(ctx, child) for child in children))
            with probe.running(ctx.agent):
                await ctx.clock.sleep(plan["work"])
        with probe.running(ctx.agent):
            if ctx.attempt <= plan.get("fail", 0):
                raise Retryable("planned failure")
        handoff = plan.get("handoff")
        if handoff is not None:
            return Handoff(handoff["agent"], payload={"plan": handoff["plan"]})
        return "ok"

    async def delegate(ctx, child: dict[str, Any]) -> Result | None:
        call = ctx.delegate("child", agent=child["agent"], payload={"plan": child["plan"]})
        if child.get("within") is None:
            return await call
        try:  # the parent gives up on this child: the delegation is cancelled
            async with ctx.clock.timeout_at(ctx.clock.time() + child["within"]):
                return await call
        except TimeoutError:
            return None

    return [
        agent(
            body,
            name=name,
            max_concurrency=limits[name],
            timeout=timeouts[name],
            retries=retries[name],
            retry_on=(Retryable, TimeoutError),
        )
        for name in NAMES
    ]


def plans() -> st.SearchStrategy[dict[str, Any]]:
    work = st.sampled_from([0.0, 0.5, 1.0, 3.0])
    leaf = st.fixed_dictionaries(
        {"work": work}, optional={"fail": st.integers(0, 2), "hang": st.booleans()}
    )

    def extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        child = st.fixed_dictionaries(
            {"agent": st.sampled_from(NAMES), "plan": inner},
            optional={"within": st.sampled_from([0.5, 2.0])},
        )
        return st.fixed_dictionaries(
            {"work": work},
            optional={
                "children": st.lists(child, min_size=1, max_size=3),
                "handoff": st.fixed_dictionaries({"agent": st.sampled_from(NAMES), "plan": inner}),
                "fail": st.integers(0, 2),
                "hang": st.booleans(),
            },
        )

    return st.recursive(leaf, extend, max_leaves=8)


roots = st.lists(
    st.tuples(st.sampled_from(NAMES), plans(), st.none() | st.sampled_from([0.0, 1.0, 2.5, 6.0])),
    min_size=1,
    max_size=5,
)


async def play(
    roots: list[tuple[str, dict[str, Any], float | None]],
    limits: dict[str, int],
    timeouts: dict[str, float | None],
    retries: dict[str, int],
    concurrency: int,
) -> tuple[Probe, list[Result], dict[str, int]]:
    clock = VirtualClock()
    probe = Probe(limits, concurrency)
    s = Scheduler(
        AgentRegistry(build(probe, limits, timeouts, retries)),
        FakeRouter(default="a"),
        clock=clock,
        concurrency=concurrency,
    )
    probe.scheduler = s

    async def cancel_later(handle: Any, at: float) -> None:
        await clock.sleep(at)
        handle.cancel()

    handles = [
        await s.submit("root", agent=name, payload={"plan": plan}) for name, plan, _ in roots
    ]
    cancels = [
        cancel_later(h, at) for h, (_, _, at) in zip(handles, roots, strict=True) if at is not None
    ]
    await asyncio.gather(*cancels)
    results = [await h for h in handles]
    await s.join()
    idle = counters(s)
    await s.close()
    return probe, results, idle


# SWARM_SLOT_EXAMPLES=2000 for a deeper search than CI's.
@settings(
    max_examples=int(os.environ.get("SWARM_SLOT_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    roots=roots,
    limits=st.fixed_dictionaries({n: st.integers(1, 3) for n in NAMES}),
    timeouts=st.fixed_dictionaries({n: st.sampled_from([None, 2.0, 5.0]) for n in NAMES}),
    retries=st.fixed_dictionaries({n: st.integers(0, 2) for n in NAMES}),
    concurrency=st.integers(1, 4),
)
def test_limits_hold_in_random_trees(roots, limits, timeouts, retries, concurrency) -> None:
    probe, results, idle = asyncio.run(
        asyncio.wait_for(play(roots, limits, timeouts, retries, concurrency), 30)
    )
    assert probe.violations == []
    assert probe.checks > 0 or all(r.attempts == 0 for r in results)  # the probe did run
    assert all(r.status in TERMINAL for r in results)
    assert +probe.bodies == Counter()
    assert idle == dict.fromkeys(idle, 0)


# The case from issue 17: a max_concurrency=1 parent awaits three delegations at once, submitted
# four times under concurrency=2 (/work/shared/cases/slots_parallel_delegate).


async def test_parallel_delegations_give_the_parent_slot_back_once() -> None:
    clock = VirtualClock()
    probe = Probe({"fan": 1, "leaf": 10}, concurrency=2)

    @agent(max_concurrency=1, timeout=10)
    async def fan(task, ctx):
        with probe.running("fan"):
            await ctx.clock.sleep(0.05)
        res = await asyncio.gather(*[ctx.delegate(f"leaf {i}", agent="leaf") for i in range(3)])
        with probe.running("fan"):
            await ctx.clock.sleep(0.05)
        return [r.status.value for r in res]

    @agent(max_concurrency=10, timeout=10)
    async def leaf(task, ctx):
        with probe.running("leaf"):
            await ctx.clock.sleep(0.2)
        return "leaf done"

    s = Scheduler(AgentRegistry([fan, leaf]), FakeRouter(default="fan"), clock=clock, concurrency=2)
    probe.scheduler = s
    handles = [await s.submit(f"fan {i}") for i in range(4)]
    results = await asyncio.wait_for(asyncio.gather(*(_result(h) for h in handles)), 10)
    assert [r.output for r in results] == [["done"] * 3] * 4
    assert probe.violations == []
    assert counters(s) == dict.fromkeys(counters(s), 0)
    await s.close()


async def _result(handle: Any) -> Result:
    return await handle
