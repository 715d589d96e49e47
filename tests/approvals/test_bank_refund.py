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
        assert row["details"]["amount"] == "129.99 GBP"  # the refund: a positive amount
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


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("refund payment T1003", "T1003 is a transfer, not a card payment"),
        ("refund payment T1012", "payment T1012 is pending; only completed ones refund"),
        ("refund payment T1005", "T1005 is a cash withdrawal, not a card payment"),
        ("refund payment T1010", "payment T1010 is not one of yours"),  # another customer's
        ("refund payment T9999", "payment T9999 is not one of yours"),
    ],
)
async def test_what_cannot_be_refunded_is_refused_without_asking(
    bank: Bank, db_url: str, text: str, reason: str
) -> None:
    before = balance(bank)
    async with make_swarm(bank, db_url) as swarm:
        r = await swarm.run(text, agent="disputes", payload=C001)
        assert await swarm.approvals(status=None) == []
    assert r.ok and r.output["done"] is False
    assert reason in r.output["reply"]
    assert balance(bank) == before


async def test_a_refunded_payment_is_refused_at_once_the_second_time(
    bank: Bank, db_url: str
) -> None:
    async with make_swarm(bank, db_url) as swarm:
        handle = await swarm.submit("refund payment T1002", agent="disputes", payload=C001)
        await swarm.approve((await waiting(swarm))["id"])
        assert (await handle).output["done"] is True
        paid = balance(bank)
        again = await swarm.run("refund payment T1002", agent="disputes", payload=C001)
        assert len(await swarm.approvals(status=None)) == 1  # no second question
    assert again.ok and again.output["done"] is False
    assert "payment T1002 is refunded; only completed ones refund" in again.output["reply"]
    assert balance(bank) == paid


@pytest.mark.parametrize(("ref", "amount"), [("T1013", "245.00 GBP"), ("T1014", "100.00 GBP")])
async def test_the_other_large_card_payments_wait_too(
    bank: Bank, db_url: str, ref: str, amount: str
) -> None:
    """The README names these as further refunds that wait for a person."""
    async with make_swarm(bank, db_url) as swarm:
        handle = await swarm.submit(f"refund payment {ref}", agent="disputes", payload=C001)
        row = await waiting(swarm)
        assert row["question"].startswith(f"refund {amount} to card ending ")
        await swarm.approve(row["id"])
        r = await handle
    assert r.ok and r.output["refunded"] == amount
