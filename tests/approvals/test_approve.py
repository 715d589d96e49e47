"""`ctx.approve` in one process, on a real SQLite file: a task waits for a person, is approved,
denied, expires or is cancelled; it gives its slots back while it waits; a decision is final;
a decision made through another store object (as another process would) is found by polling.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from swarm import (
    AgentRegistry,
    ApprovalDecided,
    Swarm,
    TaskNotFound,
    TaskStatus,
    TraceStore,
    agent,
)
from swarm.models import short_id
from swarm.testing import FakeRouter

executions: list[str] = []


def _charge(amount: float) -> dict[str, Any]:
    executions.append(f"charge {amount}")
    return {"charged": amount}


def _refund(amount: float) -> dict[str, Any]:
    executions.append(f"refund {amount}")
    return {"refunded": amount}


@agent(max_concurrency=1)
async def refunds(task, ctx):
    """Refunds: a look-up before the approval, the refund after it."""
    amount = float(task.payload.get("amount", 120))
    await ctx.tool(_charge, amount=amount)
    timeout = task.payload.get("approval_timeout")
    if not await ctx.approve(
        f"refund {amount:.2f} to card ending 4821?", timeout=timeout, details={"amount": amount}
    ):
        return {"approved": False}
    return {"approved": True, "refund": await ctx.tool(_refund, amount=amount)}


def make_swarm(db: str | TraceStore | None, **options: Any) -> Swarm:
    return Swarm(
        AgentRegistry([refunds]), router=FakeRouter({}, default="refunds"), db=db, **options
    )


@pytest.fixture(autouse=True)
def _clean() -> None:
    executions.clear()


async def waiting_approval(swarm: Swarm, n: int = 1) -> list[dict[str, Any]]:
    for _ in range(400):
        rows = await swarm.approvals()
        if len(rows) >= n:
            return rows
        await asyncio.sleep(0.01)
    raise AssertionError("no approval came to wait")


async def test_approved_task_goes_on_and_its_waiting_is_stored(db_url: str) -> None:
    async with make_swarm(db_url) as swarm:
        events = swarm.scheduler.events.subscribe()
        handle = await swarm.submit("refund my order", payload={"amount": 120})
        [row] = await waiting_approval(swarm)
        assert row["question"] == "refund 120.00 to card ending 4821?"
        assert row["details"] == {"amount": 120.0} and row["agent"] == "refunds"
        assert row["task_id"] == handle.id and row["status"] == "waiting"
        assert swarm.store is not None
        assert swarm.store.task(handle.id)["status"] == "waiting"
        assert not handle.done()
        decided = await swarm.approve(short_id(row["id"]), by="ops", note="looks fine")
        assert (decided["status"], decided["decided_by"], decided["note"]) == (
            "approved",
            "ops",
            "looks fine",
        )
        result = await handle
        events.close()
    assert result.status is TaskStatus.DONE
    assert result.output == {"approved": True, "refund": {"refunded": 120.0}}
    assert executions == ["charge 120.0", "refund 120.0"]
    kinds = [e.kind for e in events._buffer if e.kind in ("waiting", "approved", "denied")]
    assert kinds == ["waiting", "approved"]
    with TraceStore(db_url) as store:
        assert store.task(handle.id)["status"] == "done"
        [span] = store.spans(task_id=handle.id, kind="approval")
        assert span["attributes"]["decision"] == "approved"
        assert span["attributes"]["decided_by"] == "ops"


async def test_denied_task_gets_false_and_a_decision_is_final(db_url: str) -> None:
    async with make_swarm(db_url) as swarm:
        handle = await swarm.submit("refund", payload={"amount": 300})
        [row] = await waiting_approval(swarm)
        await swarm.approve(row["id"], approve=False, note="too much")
        result = await handle
        with pytest.raises(ApprovalDecided, match="was denied.*final") as refused:
            await swarm.approve(row["id"])
        assert refused.value.approval["status"] == "denied"
    assert result.output == {"approved": False}
    assert executions == ["charge 300.0"]


async def test_no_decision_in_time_expires(db_url: str) -> None:
    async with make_swarm(db_url) as swarm:
        result = await swarm.run("refund", payload={"amount": 50, "approval_timeout": 0.2})
        assert result.output == {"approved": False}
        [row] = await swarm.approvals(status=None)
        assert row["status"] == "expired"
        with pytest.raises(ApprovalDecided, match="expired"):
            await swarm.approve(row["id"])


async def test_a_decision_from_another_store_is_found_by_polling(db_url: str) -> None:
    async with make_swarm(db_url) as swarm:
        handle = await swarm.submit("refund", payload={"amount": 10})
        [row] = await waiting_approval(swarm)
        # Another process would open its own store on the same file: this does just that.
        other = TraceStore(db_url, writer="thread")
        try:
            decided = await asyncio.to_thread(other.decide_approval, row["id"][-8:], True, "cli")
        finally:
            other.close()
        assert decided["status"] == "approved"
        result = await asyncio.wait_for(handle, timeout=5)  # one poll later
    assert result.output == {"approved": True, "refund": {"refunded": 10.0}}
    assert executions == ["charge 10.0", "refund 10.0"]


async def test_cancelling_a_waiting_task_withdraws_its_question(db_url: str) -> None:
    async with make_swarm(db_url) as swarm:
        handle = await swarm.submit("refund", payload={"amount": 10})
        [row] = await waiting_approval(swarm)
        assert handle.cancel()
        result = await handle
        assert result.status is TaskStatus.CANCELLED
        assert (await swarm.approvals(status="cancelled"))[0]["id"] == row["id"]
        assert await swarm.approvals() == []
    assert executions == ["charge 10.0"]


async def test_a_waiting_task_gives_its_slot_back(db_url: str) -> None:
    """max_concurrency=1: a second task of the same agent runs while the first one waits."""
    async with make_swarm(db_url) as swarm:
        first = await swarm.submit("refund", payload={"amount": 1})
        await waiting_approval(swarm)
        second = await swarm.submit("refund", payload={"amount": 2})
        rows = await waiting_approval(swarm, 2)  # it reached its own approval: it ran
        assert swarm.scheduler.running_by_agent() == {"refunds": 0}
        for row in rows:
            await swarm.approve(row["id"])
        assert (await first).ok and (await second).ok
    assert sorted(executions) == ["charge 1.0", "charge 2.0", "refund 1.0", "refund 2.0"]


async def test_the_agent_timeout_is_paused_while_a_person_decides(db_url: str) -> None:
    @agent(timeout=0.3)
    async def quick(task, ctx):
        return await ctx.approve("go?")

    swarm = Swarm(AgentRegistry([quick]), router=FakeRouter({}, default="quick"), db=db_url)
    async with swarm:
        handle = await swarm.submit("x")
        [row] = await waiting_approval(swarm)
        await asyncio.sleep(0.5)  # longer than the agent's timeout
        await swarm.approve(row["id"])
        result = await handle
    assert result.ok and result.output is True


async def test_the_task_deadline_still_runs_while_it_waits(db_url: str) -> None:
    async with make_swarm(db_url) as swarm:
        result = await swarm.run("refund", payload={"amount": 5}, timeout=0.3)
        assert result.status is TaskStatus.FAILED and "deadline" in (result.error or "")
        [row] = await swarm.approvals(status=None)
        assert row["status"] == "cancelled"


async def test_approve_without_a_store_says_why(tmp_path: Path) -> None:
    async with make_swarm(None) as swarm:
        result = await swarm.run("refund")
    assert result.status is TaskStatus.FAILED
    assert "ctx.approve needs a trace store" in (result.error or "")


async def test_unknown_and_ambiguous_ids(db_url: str) -> None:
    async with make_swarm(db_url) as swarm:
        with pytest.raises(TaskNotFound, match="no approval with id"):
            await swarm.approve("nope")
