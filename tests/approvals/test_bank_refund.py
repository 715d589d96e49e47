"""The bank demo's refund: under 100.00 it is paid back at once; from 100.00 on a colleague approves
it first (`ctx.approve`); denied, nothing is paid; after a restart the look-up before the question
is answered from the trace and the refund is paid once. A real sandbox bank and store file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swarm import Swarm, Task, TraceStore
from swarm.agents import AgentRegistry
from swarm.testing import KeywordRouter
from swarm_examples.bank.db import Bank

C001 = {"customer": "C001"}


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[Bank]:
    b = Bank.create(f"sqlite:///{tmp_path / 'sandbox.db'}")
    yield b
    b.close()


def make_swarm(bank: Bank, db: str) -> Swarm:
    registry = AgentRegistry()
    registry.load_module("swarm_examples.bank")
    return Swarm(registry, router=KeywordRouter(registry), db=db, services={"bank": bank})


def balance(bank: Bank) -> int:
    return int(next(a for a in bank.accounts("C001") if a["id"] == "A001")["balance_cents"])


async def waiting(swarm: Swarm) -> dict[str, Any]:
    for _ in range(500):
        rows = await swarm.approvals()
        if rows:
            return rows[0]
        await asyncio.sleep(0.01)
    raise AssertionError("the refund never asked")


async def test_a_small_refund_needs_no_approval(bank: Bank, db_url: str) -> None:
    before = balance(bank)
    async with make_swarm(bank, db_url) as swarm:
        r = await swarm.run("please refund payment T1001", agent="disputes", payload=C001)
        assert await swarm.approvals(status=None) == []
    assert r.ok and r.output["done"] is True and r.output["refunded"] == "42.50 GBP"
    assert balance(bank) == before + 4_250


async def test_a_large_refund_waits_for_a_person(bank: Bank, db_url: str) -> None:
    before = balance(bank)
    async with make_swarm(bank, db_url) as swarm:
        handle = await swarm.submit("please refund payment T1002", agent="disputes", payload=C001)
        row = await waiting(swarm)
        assert row["question"].startswith("refund 129.99 GBP to card ending 4821?")
        assert row["details"]["merchant"] == "ElectroMart"
        assert balance(bank) == before  # nothing paid while it waits
        await swarm.approve(row["id"], by="supervisor")
        r = await handle
    assert r.ok and r.output["done"] is True and r.output["refunded"] == "129.99 GBP"
    assert balance(bank) == before + 12_999
    assert bank.transactions("C001", tx_id="T1002")[0]["status"] == "refunded"


async def test_a_denied_refund_pays_nothing(bank: Bank, db_url: str) -> None:
    before = balance(bank)
    async with make_swarm(bank, db_url) as swarm:
        handle = await swarm.submit("refund T1002 please", agent="disputes", payload=C001)
        await swarm.approve((await waiting(swarm))["id"], approve=False)
        r = await handle
    assert r.ok and r.output["done"] is False and r.output["approved"] is False
    assert balance(bank) == before


async def test_after_a_restart_the_refund_is_paid_once(bank: Bank, db_url: str) -> None:
    before = balance(bank)
    async with make_swarm(bank, db_url) as swarm:
        handle = await swarm.submit("please refund payment T1002", agent="disputes", payload=C001)
        row = await waiting(swarm)
    assert not (await handle).ok  # the process "stopped" while it waited
    with TraceStore(db_url) as store:
        [unfinished] = store.unfinished_tasks()
    task = Task(
        id=unfinished["id"],
        text=unfinished["text"],
        payload=unfinished["payload"],
        agent=unfinished["forced_agent"],
        run_id=unfinished["run_id"],
    )
    async with make_swarm(bank, db_url) as swarm:
        again = await swarm.scheduler.resume(task)
        assert (await waiting(swarm))["id"] == row["id"]
        await swarm.approve(row["id"])
        r = await again
    assert r.ok and r.output["repeated"] is False
    assert balance(bank) == before + 12_999
    assert bank.count("actions", task_id=task.id) == 1
    with TraceStore(db_url) as store:
        lookups = [
            s["attributes"].get("replayed", False)
            for s in store.spans(task_id=task.id, kind="tool")
            if s["name"] == "lookup_transactions"
        ]
    assert lookups == [False, True]  # looked up once; the second time came from the trace
