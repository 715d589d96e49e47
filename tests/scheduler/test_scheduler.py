"""The scheduler: routing batches, priorities, limits, timeouts, retries, deadlines, handoffs,
delegation, cancellation, isolation of failures, backpressure and shutdown.

Timing tests run on a VirtualClock: a 30 s timeout costs milliseconds of real time.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from swarm import (
    Agent,
    AgentRegistry,
    ConfigError,
    Decision,
    Handoff,
    QueueFull,
    Result,
    Retryable,
    RetryPolicy,
    Scheduler,
    SchedulerClosed,
    TaskStatus,
    agent,
)
from swarm.testing import FakeRouter, VirtualClock


def make(agents, rules=None, default=None, **options) -> Scheduler:
    router = FakeRouter(rules or {}, default=default)
    return Scheduler(AgentRegistry(agents), router, **options)


@agent
async def echo(task, ctx):
    return task.text


async def test_routes_and_runs() -> None:
    s = make([echo], default="echo")
    r = await s.run("hello")
    assert r.status is TaskStatus.DONE and r.output == "hello"
    assert r.agent == "echo" and r.hops == ["echo"] and r.attempts == 1
    assert r.decision is not None and r.decision.agent == "echo"
    await s.close()


async def test_pending_texts_are_routed_together() -> None:
    s = make([echo], default="echo")
    handles = [await s.submit(f"t{i}") for i in range(50)]
    results = [await h for h in handles]
    assert [r.output for r in results] == [f"t{i}" for i in range(50)]
    router = s.router
    assert isinstance(router, FakeRouter)
    assert len(router.calls) < 50 and max(len(c) for c in router.calls) > 1
    await s.close()


async def test_out_of_scope_is_rejected_not_run() -> None:
    ran = []

    @agent
    async def only(task, ctx):
        ran.append(task.text)
        return "ran"

    s = make([only], {"card": "only"})
    r = await s.run("what is the meaning of life")
    assert r.status is TaskStatus.REJECTED and "out of scope" in (r.error or "")
    assert ran == []
    await s.close()


class _AmbiguousRouter:
    blocking = False
    version = "amb"

    def route(self, texts):
        return [
            Decision("echo", 0.51, (("echo", 0.51), ("other", 0.49)), "amb", status="ambiguous")
            for _ in texts
        ]


@pytest.mark.parametrize(("policy", "status"), [("reject", "rejected"), ("run", "done")])
async def test_ambiguous_decision_policy(policy: str, status: str) -> None:
    s = Scheduler(AgentRegistry([echo]), _AmbiguousRouter(), ambiguous=policy)  # type: ignore[arg-type]
    r = await s.run("hmm")
    assert r.status.value == status
    if policy == "reject":
        assert r.error == "ambiguous: echo (0.51) or other (0.49)?"
    await s.close()


async def test_router_naming_an_unknown_agent_fails_the_task() -> None:
    s = make([echo], default="ghost")
    r = await s.run("x")
    assert r.status is TaskStatus.FAILED and "no agent named 'ghost'" in (r.error or "")
    await s.close()


async def test_a_broken_router_fails_its_batch_and_the_scheduler_goes_on() -> None:
    calls = 0

    def rules(text: str) -> str:
        nonlocal calls
        calls += 1
        if text == "boom":
            raise RuntimeError("router exploded")
        return "echo"

    s = make([echo], rules)
    bad = await s.run("boom")
    assert bad.status is TaskStatus.FAILED and "router exploded" in (bad.error or "")
    good = await s.run("fine")
    assert good.ok
    await s.close()


async def test_higher_priority_runs_first() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    @agent(max_concurrency=1)
    async def serial(task, ctx):
        await gate.wait()
        order.append(task.text)
        return "ok"

    s = make([serial], default="serial")
    first = await s.submit("first")
    await asyncio.sleep(0.01)  # `first` holds the only slot
    handles = [await s.submit(f"p{p}", priority=p) for p in (1, 5, 3)]
    gate.set()
    await first
    for h in handles:
        await h
    assert order == ["first", "p5", "p3", "p1"]
    await s.close()


async def test_per_agent_and_global_limits_hold() -> None:
    running = {"a": 0, "b": 0, "all": 0}
    peak = {"a": 0, "b": 0, "all": 0}

    def tracked(name: str, limit: int):
        @agent(name=name, max_concurrency=limit)
        async def fn(task, ctx):
            running[name] += 1
            running["all"] += 1
            peak[name] = max(peak[name], running[name])
            peak["all"] = max(peak["all"], running["all"])
            await asyncio.sleep(0.002)
            running[name] -= 1
            running["all"] -= 1
            return "ok"

        return fn

    s = make([tracked("a", 2), tracked("b", 10)], {"a:": "a", "b:": "b"}, concurrency=5)
    handles = [await s.submit(f"{'a' if i % 2 else 'b'}: {i}") for i in range(60)]
    results = [await h for h in handles]
    assert all(r.ok for r in results)
    assert peak["a"] == 2
    assert peak["all"] == 5
    await s.close()


async def test_a_busy_agent_does_not_starve_another() -> None:
    """With the global limit saturated by one agent's backlog, another agent still gets slots."""
    done_b = asyncio.Event()

    @agent(max_concurrency=4)
    async def slow(task, ctx):
        await asyncio.sleep(0.005)
        return "slow"

    @agent
    async def quick(task, ctx):
        done_b.set()
        return "quick"

    s = make([slow, quick], {"slow": "slow", "quick": "quick"}, concurrency=4)
    slow_handles = [await s.submit("slow") for _ in range(200)]
    q = await s.submit("quick")
    r = await q
    assert r.ok
    assert sum(h.done() for h in slow_handles) < 200  # quick finished before the backlog
    for h in slow_handles:
        await h
    await s.close()


async def test_timeout_in_virtual_time(clock: VirtualClock) -> None:
    @agent(timeout=30)
    async def hangs(task, ctx):
        await ctx.clock.sleep(3600)
        return "never"

    s = make([hangs, echo], {"hang": "hangs"}, default="echo", clock=clock)
    start = time.perf_counter()
    hung, fine = await asyncio.gather(s.run("hang"), s.run("fine"))
    assert hung.status is TaskStatus.FAILED and hung.error == "timed out after 30s"
    assert fine.ok
    assert clock.time() == pytest.approx(30)
    assert time.perf_counter() - start < 2
    await s.close()


async def test_retries_back_off_exponentially_with_jitter(clock: VirtualClock) -> None:
    tries: list[float] = []

    @agent(retries=4)
    async def flaky(task, ctx):
        tries.append(ctx.clock.time())
        if len(tries) < 4:
            raise Retryable("upstream busy")
        return "finally"

    policy = RetryPolicy(base=1.0, factor=2.0, cap=60, rng=random.Random(7))
    expected = RetryPolicy(base=1.0, factor=2.0, cap=60, rng=random.Random(7))
    s = make([flaky], default="flaky", clock=clock, retry=policy)
    r = await s.run("x")
    assert r.ok and r.output == "finally" and r.attempts == 4
    gaps = [b - a for a, b in zip(tries, tries[1:], strict=False)]
    assert gaps == pytest.approx([expected.delay(n) for n in (1, 2, 3)])
    for n, gap in enumerate(gaps, start=1):
        assert 0 <= gap <= 2 ** (n - 1)
    await s.close()


async def test_retries_run_out(clock: VirtualClock) -> None:
    @agent(retries=2)
    async def always(task, ctx):
        raise Retryable("still down")

    s = make([always], default="always", clock=clock, retry=RetryPolicy(jitter=False))
    r = await s.run("x")
    assert r.status is TaskStatus.FAILED and r.attempts == 3
    assert r.error == "Retryable: still down"
    await s.close()


async def test_unmarked_errors_are_not_retried(clock: VirtualClock) -> None:
    calls = 0

    @agent(retries=5)
    async def buggy(task, ctx):
        nonlocal calls
        calls += 1
        raise KeyError("account")

    s = make([buggy], default="buggy", clock=clock)
    r = await s.run("x")
    assert r.status is TaskStatus.FAILED and calls == 1 and "KeyError" in (r.error or "")
    await s.close()


async def test_timeouts_retry_when_the_agent_says_so(clock: VirtualClock) -> None:
    calls = 0

    @agent(timeout=5, retries=1, retry_on=(TimeoutError,))
    async def slow_once(task, ctx):
        nonlocal calls
        calls += 1
        if calls == 1:
            await ctx.clock.sleep(100)
        return "second try"

    s = make([slow_once], default="slow_once", clock=clock, retry=RetryPolicy(jitter=False))
    r = await s.run("x")
    assert r.ok and r.output == "second try" and r.attempts == 2
    await s.close()


async def test_deadline_bounds_the_whole_task(clock: VirtualClock) -> None:
    @agent(timeout=None, retries=10)
    async def slow(task, ctx):
        await ctx.clock.sleep(4)
        raise Retryable("again")

    s = make([slow], default="slow", clock=clock, retry=RetryPolicy(base=1, jitter=False))
    r = await s.run("x", timeout=10)
    assert r.status is TaskStatus.FAILED
    assert "deadline" in (r.error or "")
    assert clock.time() <= 10
    await s.close()


async def test_expired_deadline_fails_before_running(clock: VirtualClock) -> None:
    ran = False

    @agent
    async def never(task, ctx):
        nonlocal ran
        ran = True
        return "x"

    s = make([never], default="never", clock=clock)
    r = await s.run("x", deadline=-1.0)
    assert r.status is TaskStatus.FAILED and "deadline exceeded before" in (r.error or "")
    assert not ran
    await s.close()


async def test_one_agent_raising_or_returning_garbage_never_stops_others() -> None:
    @agent
    async def raises(task, ctx):
        raise ZeroDivisionError("oops")

    @agent
    async def garbage(task, ctx):
        return object()

    s = make([raises, garbage, echo], {"raise": "raises", "garbage": "garbage"}, default="echo")
    handles = [await s.submit(t) for t in ["raise", "garbage", "fine", "raise", "fine"]]
    results = [await h for h in handles]
    assert [r.status.value for r in results] == ["failed", "failed", "done", "failed", "done"]
    assert "ZeroDivisionError: oops" == results[0].error
    assert "returned object; expected a Result" in (results[1].error or "")
    await s.close()


async def test_agent_may_return_a_result() -> None:
    @agent
    async def explicit(task, ctx):
        return Result(task_id="ignored", status=TaskStatus.FAILED, error="card not found")

    s = make([explicit], default="explicit")
    r = await s.run("x")
    assert r.task_id != "ignored" and r.status is TaskStatus.FAILED
    assert r.error == "card not found"
    await s.close()


async def test_handoff_moves_the_task_and_merges_payload() -> None:
    @agent
    async def front(task, ctx):
        return Handoff("disputes", "a dispute", payload={"from": "front"})

    @agent
    async def disputes(task, ctx):
        return {"seen": task.payload}

    s = make([front, disputes], default="front")
    r = await s.run("dispute this", payload={"card": "1234"})
    assert r.ok and r.hops == ["front", "disputes"] and r.agent == "disputes"
    assert r.output == {"seen": {"card": "1234", "from": "front"}}
    await s.close()


async def test_handoff_loop_is_an_error_not_a_hang() -> None:
    @agent
    async def ping(task, ctx):
        return Handoff("pong")

    @agent
    async def pong(task, ctx):
        return Handoff("ping")

    s = make([ping, pong], default="ping")
    r = await asyncio.wait_for(s.run("x"), 2)
    assert r.status is TaskStatus.FAILED and r.error == "handoff loop: ping -> pong -> ping"
    await s.close()


async def test_hop_limit() -> None:
    agents = []
    for i in range(6):

        async def fn(task, ctx, i=i):
            return Handoff(f"a{i + 1}")

        agents.append(agent(fn, name=f"a{i}"))
    agents.append(agent(echo.fn, name="a6"))
    s = make(agents, default="a0", hop_limit=3)
    r = await s.run("x")
    assert r.status is TaskStatus.FAILED and r.error is not None
    assert r.error.startswith("more than 3 handoffs")
    await s.close()


async def test_handoff_to_unknown_agent_fails() -> None:
    @agent
    async def lost(task, ctx):
        return Handoff("nowhere")

    s = make([lost], default="lost")
    r = await s.run("x")
    assert r.status is TaskStatus.FAILED and "unknown agent 'nowhere'" in (r.error or "")
    await s.close()


async def test_delegate_runs_a_routed_child_and_returns_its_result() -> None:
    @agent
    async def parent(task, ctx):
        child = await ctx.delegate("child: look this up")
        return {"child": child.output, "child_agent": child.agent}

    s = make([parent, echo], {"child": "echo"}, default="parent")
    r = await s.run("parent work", session="s1")
    assert r.ok and r.output == {"child": "child: look this up", "child_agent": "echo"}
    await s.close()


async def test_delegation_does_not_deadlock_with_one_slot() -> None:
    @agent(max_concurrency=1)
    async def recursive(task, ctx):
        depth = task.payload.get("depth", 0)
        if depth < 3:
            child = await ctx.delegate("deeper", agent="recursive", payload={"depth": depth + 1})
            return child.output + 1
        return 0

    s = make([recursive], default="recursive", concurrency=1)
    r = await asyncio.wait_for(s.run("start"), 5)
    assert r.ok and r.output == 3
    await s.close()


async def test_delegation_depth_is_bounded() -> None:
    @agent
    async def forever(task, ctx):
        child = await ctx.delegate("again", agent="forever")
        return child.error if not child.ok else child.output

    s = make([forever], default="forever", max_depth=3)
    r = await asyncio.wait_for(s.run("x"), 5)
    assert r.ok and r.output == "delegation deeper than 3 levels"
    await s.close()


async def test_cancelling_a_task_cancels_its_children() -> None:
    child_started = asyncio.Event()
    child_cancelled = asyncio.Event()

    @agent(timeout=None)
    async def parent(task, ctx):
        await ctx.delegate("child", agent="child")
        return "unreachable"

    @agent(timeout=None)
    async def child(task, ctx):
        child_started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            child_cancelled.set()
            raise
        return "unreachable"

    s = make([parent, child], default="parent")
    h = await s.submit("x")
    await asyncio.wait_for(child_started.wait(), 2)
    assert h.cancel()
    r = await h
    assert r.status is TaskStatus.CANCELLED
    await asyncio.wait_for(child_cancelled.wait(), 2)
    assert s.stats["live"] == 0
    await s.close()


async def test_cancelling_a_queued_task() -> None:
    gate = asyncio.Event()

    @agent(max_concurrency=1, timeout=None)
    async def one(task, ctx):
        await gate.wait()
        return task.text

    s = make([one], default="one")
    first = await s.submit("first")
    second = await s.submit("second")
    await asyncio.sleep(0.01)
    assert second.cancel()
    gate.set()
    assert (await first).ok
    r = await second
    assert r.status is TaskStatus.CANCELLED and r.error == "cancelled before it started"
    await s.close()


async def test_backpressure_bounds_the_queue() -> None:
    gate = asyncio.Event()

    @agent(max_concurrency=1, timeout=None)
    async def blocked(task, ctx):
        await gate.wait()
        return "ok"

    s = make([blocked], default="blocked", max_queue=3)
    handles = [await s.submit(str(i)) for i in range(3)]
    await asyncio.sleep(0.01)  # one starts, two wait
    handles.append(await s.submit("3"))
    with pytest.raises(QueueFull):
        s.submit_nowait("overflow")
    waiting = asyncio.ensure_future(s.submit("4"))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # submit waits for room
    gate.set()
    handles.append(await asyncio.wait_for(waiting, 2))
    assert all([(await h).ok for h in handles])
    await s.close()


async def test_graceful_shutdown_drains() -> None:
    @agent
    async def brief(task, ctx):
        await asyncio.sleep(0.01)
        return "done"

    s = make([brief], default="brief")
    handles = [await s.submit(str(i)) for i in range(20)]
    await s.close(drain=True, grace=5)
    assert all(h.done() for h in handles)
    assert all([(await h).ok for h in handles])
    with pytest.raises(SchedulerClosed):
        await s.submit("late")


async def test_shutdown_cancels_what_does_not_finish_in_time() -> None:
    @agent(timeout=None, max_concurrency=1)
    async def stuck(task, ctx):
        await asyncio.sleep(3600)

    s = make([stuck], default="stuck")
    running = await s.submit("running")
    queued = await s.submit("queued")
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    await s.close(drain=True, grace=0.05)
    assert time.perf_counter() - start < 2
    assert (await running).status is TaskStatus.CANCELLED
    r = await queued
    assert r.status is TaskStatus.CANCELLED and r.error == "scheduler shut down"


async def test_spans_opened_by_an_agent_nest_under_its_attempt(store) -> None:
    @agent
    async def tooled(task, ctx):
        async with ctx.span("tool", "outer") as outer:
            outer.set(x=1)
            async with ctx.span("tool", "inner"):
                pass
        return await ctx.tool(lambda a, b: a + b, a=2, b=3)

    s = make([tooled], default="tooled", store=store)
    r = await s.run("x")
    assert r.ok and r.output == 5
    await s.close()
    spans = {sp["name"]: sp for sp in store.spans(task_id=r.task_id)}
    assert spans["outer"]["parent_id"] == spans["tooled"]["id"]
    assert spans["inner"]["parent_id"] == spans["outer"]["id"]
    assert spans["outer"]["attributes"] == {"x": 1}
    assert spans["<lambda>"]["attributes"] == {"arguments": {"a": 2, "b": 3}, "output": 5}


class Counter(Agent):
    name = "counter"
    max_concurrency = 3

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, task, ctx):
        self.calls += 1
        return self.calls


async def test_many_tasks_all_finish_once() -> None:
    counter = Counter()
    s = make([counter], default="counter")
    handles = [await s.submit(str(i)) for i in range(500)]
    results = [await h for h in handles]
    assert sorted(r.output for r in results) == list(range(1, 501))
    assert counter.calls == 500
    assert s.stats == {"live": 0, "waiting": 0, "running": 0, "overdue": 0}
    await s.close()


async def test_workers_live_in_a_task_group_that_close_ends() -> None:
    @agent(max_concurrency=4)
    async def brief(task, ctx):
        await asyncio.sleep(0.001)
        return "ok"

    outside = asyncio.all_tasks()
    s = make([brief], default="brief")
    await s.start()
    handles = [await s.submit(str(i)) for i in range(40)]
    await asyncio.sleep(0)
    mine = asyncio.all_tasks() - outside
    assert mine  # the routing loop and the workers
    assert all([(await h).ok for h in handles])
    await s.close()
    assert all(t.done() for t in mine)
    assert asyncio.all_tasks() - outside == set()  # nothing left behind


def test_a_router_without_version_or_blocking_is_refused() -> None:
    class Bare:
        def route(self, texts):
            return []

    with pytest.raises(ConfigError, match="needs route\\(texts\\), version and blocking"):
        Scheduler(AgentRegistry([echo]), Bare())  # type: ignore[arg-type]


class _RefusingStore:
    """A sink that cannot write one task's result (as a store can refuse a value)."""

    def task_queued(self, task, *, resumed=False): ...
    def task_started(self, task_id, agent, attempt): ...
    def record_decision(self, task_id, decision): ...
    def record_span(self, span): ...

    def task_finished(self, result):
        if result.output == "poison":
            raise ValueError("cannot encode")

    async def flush(self): ...


async def test_a_store_that_refuses_a_result_does_not_hang_its_waiters() -> None:
    s = make([echo], default="echo", store=_RefusingStore())
    bad, good = await asyncio.wait_for(asyncio.gather(s.run("poison"), s.run("fine")), 5)
    assert bad.ok and bad.output == "poison" and good.ok
    await s.join()
    await s.close()
