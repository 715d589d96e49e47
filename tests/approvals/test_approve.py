"""`ctx.approve` in one process, on a real SQLite file: a task waits for a person, is approved,
denied, expires or is cancelled; it gives its slots back while it waits; a decision is final;
a decision made through another store object (as another process would) is found by polling.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from refund_agents import careful, checker, executions, refunds

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
    kinds = [e.kind async for e in events if e.kind in ("waiting", "approved", "denied")]
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
        events = swarm.scheduler.events.subscribe()
        result = await swarm.run("refund", payload={"amount": 50, "approval_timeout": 0.2})
        events.close()
        told = [(e.kind, e.data) async for e in events if e.kind in ("waiting", "denied")]
        assert [kind for kind, _ in told] == ["waiting", "denied"]
        assert told[0][1]["expires_at"] is not None and told[0][1]["agent"] == "refunds"
        assert told[1][1]["status"] == "expired" and told[1][1]["by"] is None
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


async def test_a_restart_leaves_it_waiting_and_the_resumed_task_does_not_redo_its_steps(
    db_url: str,
) -> None:
    """close() while it waits: the row stays waiting; resumed in a new swarm, the tool before the
    approval is served from the trace, the stored approval is found again, and once approved the
    refund runs (for real) once."""
    async with make_swarm(db_url) as swarm:
        handle = await swarm.submit("refund", payload={"amount": 70})
        [row] = await waiting_approval(swarm)
    stopped = await handle
    assert stopped.status is TaskStatus.CANCELLED and "still waiting" in (stopped.error or "")
    assert executions == ["charge 70.0"]
    with TraceStore(db_url) as store:
        [task] = store.unfinished_tasks()
        assert (task["id"], task["status"]) == (handle.id, "waiting")
        assert store.approval(row["id"])["status"] == "waiting"

    async with make_swarm(db_url) as swarm:
        again = await swarm.scheduler.resume(_task_from_row(task))
        rows = await waiting_approval(swarm)
        assert [r["id"] for r in rows] == [row["id"]]  # the same question: no second row
        await swarm.approve(row["id"], by="ops")
        result = await again
    assert result.output == {"approved": True, "refund": {"refunded": 70.0}}
    assert executions == ["charge 70.0", "refund 70.0"]  # the charge ran once in all
    with TraceStore(db_url) as store:
        charges = [s for s in store.spans(task_id=handle.id, kind="tool") if s["name"] == "_charge"]
        assert [bool(s["attributes"].get("replayed")) for s in charges] == [False, True]
        assert len(store.approvals(task_id=handle.id)) == 1


def _task_from_row(row: dict[str, Any]) -> Any:
    from swarm import Task

    return Task(id=row["id"], text=row["text"], payload=row["payload"], run_id=row["run_id"])


async def test_a_resumed_task_is_answered_its_recorded_llm_calls(db_url: str) -> None:
    from swarm.testing import ScriptedLLM

    @agent
    async def writer(task, ctx):
        draft = await ctx.llm.chat(["draft a refund note"])
        if not await ctx.approve("send it?"):
            return None
        final = await ctx.llm.chat(["polish: " + draft.content])
        return [draft.content, final.content]

    def make(llm: ScriptedLLM) -> Swarm:
        registry = AgentRegistry([writer])
        return Swarm(registry, router=FakeRouter({}, default="writer"), db=db_url, llm=llm)

    first = ScriptedLLM(["draft one"])
    async with make(first) as swarm:
        handle = await swarm.submit("write")
        [row] = await waiting_approval(swarm)
    assert first.calls == 1
    with TraceStore(db_url) as store:
        [task] = store.unfinished_tasks()

    second = ScriptedLLM(["polished"])  # a live LLM that has not seen the draft request
    async with make(second) as swarm:
        again = await swarm.scheduler.resume(_task_from_row(task))
        await waiting_approval(swarm)
        await swarm.approve(row["id"])
        result = await again
    assert result.output == ["draft one", "polished"]
    assert [r.messages[-1].content for r in second.requests] == ["polish: draft one"]
    assert task["id"] == handle.id


@pytest.mark.parametrize("decision", ["approved", "denied", "expired"])
async def test_a_decision_made_while_no_process_ran_the_task_is_found_on_resume(
    db_url: str, decision: str
) -> None:
    payload: dict[str, Any] = {"amount": 30}
    if decision == "expired":
        payload["approval_timeout"] = 0.3
    async with make_swarm(db_url) as swarm:
        handle = await swarm.submit("refund", payload=payload)
        [row] = await waiting_approval(swarm)
    await handle
    with TraceStore(db_url) as store:
        if decision == "expired":
            await asyncio.sleep(0.4)  # it runs out while nobody runs the task
        else:
            store.decide_approval(row["id"], decision == "approved", "ana")
        [task] = store.unfinished_tasks()
    async with make_swarm(db_url) as swarm:
        result = await asyncio.wait_for(await swarm.scheduler.resume(_task_from_row(task)), 10)
        assert await swarm.approvals() == []  # it never waited again
    assert result.output["approved"] is (decision == "approved")
    refunds_made = [e for e in executions if e.startswith("refund")]
    assert executions[0] == "charge 30.0" and executions.count("charge 30.0") == 1
    assert refunds_made == (["refund 30.0"] if decision == "approved" else [])
    with TraceStore(db_url) as store:
        assert store.approval(row["id"])["status"] == decision
        assert store.task(task["id"])["status"] == "done"


async def test_a_finished_child_task_is_not_run_again_on_resume(db_url: str) -> None:
    def make() -> Swarm:
        registry = AgentRegistry([careful, checker])
        return Swarm(registry, router=FakeRouter({}, default="careful"), db=db_url)

    async with make() as swarm:
        handle = await swarm.submit("careful refund", agent="careful")
        [row] = await waiting_approval(swarm)
    await handle
    assert executions == ["check 4821"]
    with TraceStore(db_url) as store:
        [task] = store.unfinished_tasks()  # the finished child is not
        [child] = store.children(task["id"])
    async with make() as swarm:
        again = await swarm.scheduler.resume(_task_from_row(task))
        await waiting_approval(swarm)
        await swarm.approve(row["id"])
        result = await again
    assert result.output == {
        "approved": True,
        "check": {"card": "4821", "status": "active"},
        "refund": {"refunded": 5.0},
    }
    assert executions == ["check 4821", "refund 5"]  # the check ran once in all
    with TraceStore(db_url) as store:
        assert [c["id"] for c in store.children(task["id"])] == [child["id"]]
        delegations = store.spans(task_id=task["id"], kind="delegate")
        assert [d["attributes"].get("replayed", False) for d in delegations] == [False, True]


async def test_on_postgresql_too(pg_url: str) -> None:
    """The same wait, decision by another store object (another process's view) and polling."""
    async with make_swarm(pg_url) as swarm:
        handle = await swarm.submit("refund", payload={"amount": 12})
        [row] = await waiting_approval(swarm)
        other = TraceStore(pg_url)
        try:
            await asyncio.to_thread(other.decide_approval, row["id"][-8:], True, "pg")
        finally:
            other.close()
        result = await asyncio.wait_for(handle, timeout=5)
    assert result.output == {"approved": True, "refund": {"refunded": 12.0}}
