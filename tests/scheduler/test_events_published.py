"""What the scheduler itself publishes on `Scheduler.events` where no `Swarm` is involved: timeouts
(virtual time), a task cancelled before it started, a broken router, a task resumed, shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

from swarm import AgentRegistry, Decision, Scheduler, Task, TaskStatus, agent
from swarm.events import Event, Subscription
from swarm.testing import FakeRouter, VirtualClock


@agent(timeout=0.5)
async def slow(task, ctx):
    await ctx.clock.sleep(10)
    return "too late"


@agent(max_concurrency=1, timeout=None)
async def blocker(task, ctx):
    await asyncio.Event().wait()


def make(agents: list[Any], **options: Any) -> Scheduler:
    registry = AgentRegistry(agents)
    return Scheduler(registry, FakeRouter(default=registry.names[0]), **options)


async def drain(events: Subscription) -> list[Event]:
    return [e async for e in events]


def kinds(events: list[Event]) -> list[str]:
    return [e.kind if e.kind != "span" else f"span:{e.data['kind']}" for e in events]


async def test_a_timeout_ends_the_agent_span_in_error_then_the_task_fails() -> None:
    s = make([slow], clock=VirtualClock())
    task = Task(text="slow request")
    events = s.events.subscribe(task.id)
    await s.submit(task)
    got = await drain(events)
    assert kinds(got) == ["queued", "routed", "started", "span:agent", "done"]
    assert got[3].data["status"] == "error"
    assert got[-1].data == {
        "status": "failed",
        "agent": "slow",
        "output": None,
        "error": "timed out after 0.5s",
    }
    await s.close()


async def test_a_task_cancelled_while_it_waits_for_a_slot_never_starts() -> None:
    s = make([blocker])
    first = await s.submit("hold the only slot")
    second = Task(text="wait behind it")
    events = s.events.subscribe(second.id)
    await s.submit(second)
    got = []
    async for event in events:
        got.append(event)
        if event.kind == "routed":  # into the lane, behind the first (the agent's one slot)
            assert s.cancel(second.id)
    assert kinds(got) == ["queued", "routed", "done"]
    assert got[-1].data["status"] == "cancelled"
    assert got[-1].data["error"] == "cancelled before it started"
    first.cancel()
    await s.close(grace=1)


class BrokenRouter:
    blocking = False
    version = "broken"

    def route(self, texts: list[str]) -> list[Decision]:
        raise RuntimeError("the model file is gone")


async def test_a_broken_router_fails_the_task_without_a_routed_event() -> None:
    s = Scheduler(AgentRegistry([slow]), BrokenRouter())
    task = Task(text="anything")
    events = s.events.subscribe(task.id)
    await s.submit(task)
    got = await drain(events)
    assert kinds(got) == ["queued", "done"]
    assert got[-1].data["status"] == "failed"
    assert "the model file is gone" in got[-1].data["error"]
    await s.close()


async def test_a_resumed_task_is_queued_again_under_its_own_id() -> None:
    @agent
    async def echo(task, ctx):
        return task.text

    s = make([echo])
    task = Task(text="left unfinished", agent="echo")
    events = s.events.subscribe(task.id)
    await s.resume(task)
    got = await drain(events)
    assert kinds(got) == ["queued", "routed", "started", "span:agent", "done"]
    assert {e.task_id for e in got} == {task.id}
    assert got[1].data["status"] == "forced" and got[-1].data["output"] == "left unfinished"
    await s.close()


async def test_shutdown_ends_every_open_stream_with_done() -> None:
    s = make([blocker])
    watched = [Task(text=f"blocked {i}") for i in range(3)]
    everything = s.events.subscribe()
    subs = [s.events.subscribe(t.id) for t in watched]
    for t in watched:
        await s.submit(t)
    await asyncio.sleep(0.01)
    await s.close(drain=False, grace=1)
    for t, sub in zip(watched, subs, strict=True):
        got = await drain(sub)
        assert got[-1].kind == "done" and got[-1].task_id == t.id
        assert got[-1].data["status"] == TaskStatus.CANCELLED.value
    everything.close()
    seqs = [e.seq async for e in everything]
    assert seqs == list(range(1, len(seqs) + 1))  # one numbering, no gaps, for all subscribers
