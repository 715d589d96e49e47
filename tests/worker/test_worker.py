"""The worker loop in this process, on a real store: it runs what is queued (routed, or sent to
the agent a task names), a `Swarm` leases its own tasks so no worker takes them, and a worker
that lost a lease cancels that task without recording over the new owner."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import update

from swarm import Swarm, agent
from swarm.testing import FakeRouter
from swarm.trace import TraceStore
from swarm.trace.schema import TaskRow
from swarm.worker import Worker

GATE_S = 30.0


@agent
async def counter(task, ctx):
    return len(task.text.split())


@agent(timeout=60)
async def slow(task, ctx):
    await asyncio.sleep(float(task.payload.get("sleep", GATE_S)))
    return "slow done"


ROUTER = FakeRouter({"slow": "slow"}, default="counter")


async def test_a_worker_runs_what_is_queued_then_leaves_when_idle(any_url: str) -> None:
    with TraceStore(any_url) as submitter:
        ids = submitter.enqueue_many(["one two", "three", "four five six"])
        forced = submitter.enqueue("slow please", agent="slow", payload={"sleep": 0})
    worker = Worker([counter, slow], db=any_url, router=ROUTER, concurrency=2, poll=0.05)
    async with worker:
        await asyncio.wait_for(worker.serve(idle_exit=0.3), 30)
        owner, run_id = worker.id, worker.run_id
    assert worker.claimed == 4 and worker.lost == 0
    with TraceStore(any_url) as store:
        rows = {r["id"]: r for r in store.tasks(limit=None)}
        assert [rows[i]["output"] for i in ids] == [2, 1, 3]
        assert rows[forced]["agent"] == "slow" and rows[forced]["output"] == "slow done"
        assert all(r["status"] == "done" and r["lease_owner"] is None for r in rows.values())
        assert {r["run_id"] for r in rows.values()} == {run_id}
        assert store.decision(ids[0])["agent"] == "counter"  # routed as usual
        assert len(store.spans(run_id=run_id, kind="agent")) == 4
        [row] = store.workers([owner])
        assert row["kind"] == "worker" and row["stopped_at"] is not None


async def test_a_swarms_own_tasks_are_leased_to_it(any_url: str) -> None:
    async with Swarm([counter, slow], router=ROUTER, db=any_url) as swarm:
        handle = await swarm.submit("slow", payload={"sleep": 0.5})
        await asyncio.sleep(0.2)
        with TraceStore(any_url) as other:
            assert other.claim(5) == []  # nobody else takes it
            row = other.task(handle.id)
            assert swarm.store is not None and row["lease_owner"] == swarm.store.owner
        assert (await handle).ok
    with TraceStore(any_url) as store:
        assert store.task(handle.id)["lease_owner"] is None


async def test_a_worker_that_lost_a_lease_cancels_that_task(any_url: str) -> None:
    with TraceStore(any_url) as submitter:
        task_id = submitter.enqueue("slow", agent="slow")
    worker = Worker([counter, slow], db=any_url, router=ROUTER, lease=1.0, heartbeat=0.1)
    async with worker:
        serving = asyncio.create_task(worker.serve())
        with TraceStore(any_url) as thief:
            for _ in range(200):  # until the worker runs it
                if thief.task(task_id)["status"] == "running":
                    break
                await asyncio.sleep(0.05)
            # Another worker takes it (as if this one had missed its heartbeats).
            with thief.engine.begin() as conn:
                conn.execute(
                    update(TaskRow.__table__)
                    .where(TaskRow.__table__.c.id == task_id)
                    .values(lease_owner="worker-thief", lease_expires_at=time.time() + 60)
                )
            started = time.monotonic()
            for _ in range(100):  # 5 s at most
                if not worker.held:
                    break
                await asyncio.sleep(0.05)
            assert not worker.held and worker.lost == 1
            worker.stop()
            await asyncio.wait_for(serving, 10)
        assert time.monotonic() - started < 2  # within a heartbeat or so, not after GATE_S
    with TraceStore(any_url) as store:
        row = store.task(task_id)
        # The cancelled result was not recorded over the new owner's row.
        assert row["lease_owner"] == "worker-thief" and row["status"] == "running"
