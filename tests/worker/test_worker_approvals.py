"""A task that asks a person (`ctx.approve`) in a worker waits there, and goes on once someone
decides from another process (another store on the same database)."""

from __future__ import annotations

import asyncio

from swarm import agent
from swarm.testing import FakeRouter
from swarm.trace import TraceStore
from swarm.worker import Worker


@agent
async def refunds(task, ctx):
    if await ctx.approve(f"refund {task.text}?", timeout=60):
        return "refunded"
    return "not refunded"


async def test_a_task_in_a_worker_waits_for_a_person_then_finishes(any_url: str) -> None:
    with TraceStore(any_url) as submitter:
        yes, no = submitter.enqueue("120.00"), submitter.enqueue("300.00")
    worker = Worker([refunds], db=any_url, router=FakeRouter({}, default="refunds"), poll=0.05)
    async with worker:
        serving = asyncio.create_task(worker.serve(idle_exit=1.0))
        with TraceStore(any_url) as person:
            for _ in range(300):  # until both wait
                waiting = person.approvals(status="waiting")
                if len(waiting) == 2:
                    break
                await asyncio.sleep(0.05)
            by_task = {a["task_id"]: a["id"] for a in waiting}
            assert set(by_task) == {yes, no}
            assert person.task(yes)["status"] == "waiting"
            person.decide_approval(by_task[yes], True, by="ana")
            person.decide_approval(by_task[no], False, by="ana")
        await asyncio.wait_for(serving, 30)
    with TraceStore(any_url) as store:
        assert store.task(yes)["output"] == "refunded"
        assert store.task(no)["output"] == "not refunded"
        assert {store.task(i)["status"] for i in (yes, no)} == {"done"}
