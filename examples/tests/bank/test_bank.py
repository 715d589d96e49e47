"""The bank pack: idempotent actions under retry and resume, refusals, state after actions, the
intent mapping and training data, through the real scheduler with a forced or keyword route."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import swarm_examples.bank as bank_pack
from swarm import Swarm
from swarm.agents import AgentRegistry
from swarm.models import Task
from swarm.testing import KeywordRouter, VirtualClock
from swarm_examples.bank.db import Bank, BankRefusal
from swarm_examples.bank.intents import AGENT_INTENTS, INTENT_TO_AGENT, banking77_rows


def registry() -> AgentRegistry:
    r = AgentRegistry()
    r.load_module("swarm_examples.bank")
    return r


def make_swarm(bank: Bank, **kw: object) -> Swarm:
    reg = registry()
    return Swarm(reg, router=KeywordRouter(reg), db=None, services={"bank": bank}, **kw)  # type: ignore[arg-type]


def test_every_banking77_intent_has_one_agent() -> None:
    categories = json.loads(
        (Path(bank_pack.__file__).parent / "banking77/categories.json").read_text()
    )
    assert sorted(INTENT_TO_AGENT) == sorted(categories)
    assert sum(len(v) for v in AGENT_INTENTS.values()) == 77
    assert set(AGENT_INTENTS) <= {a.name for a in bank_pack.BANK_AGENTS}


def test_training_data_maps_train_rows_and_keeps_test_rows_out() -> None:
    rows = bank_pack.PACK.training_rows()
    assert {label for _, label in rows} == set(AGENT_INTENTS)
    assert len(rows) == len(banking77_rows("train")) > 10_000
    test_texts = {t for t, _ in banking77_rows("test")}
    train_texts = {t for t, _ in banking77_rows("train")}
    leaked = {t for t, _ in rows if t in test_texts and t not in train_texts}
    assert not leaked


def test_the_pack_is_what_a_registry_and_a_suite_see() -> None:
    reg = registry()
    (pack,) = reg.packs
    assert pack.name == "bank" and pack.module == "swarm_examples.bank"  # what --agents takes
    assert reg.out_of_scope == list(bank_pack.PACK.out_of_scope)
    assert len(reg.out_of_scope) >= 60
    assert not set(reg.out_of_scope) & {t for t, _ in bank_pack.PACK.training_rows()}
    assert {"sandbox", "ops_sandbox"} <= set(bank_pack.PACK.fixtures)
    assert bank_pack.PACK.suites is not None
    suites = {p.name for p in bank_pack.PACK.suites.glob("*.yaml")}
    assert {"bank_actions.yaml", "bank_routing.yaml", "ops_desk.yaml"} <= suites


def test_block_twice_in_one_task_blocks_once(bank: Bank) -> None:
    first = bank.block_card("task-1", "C001", "4821")
    again = bank.block_card("task-1", "C001", "4821")
    assert first["repeated"] is False and again["repeated"] is True
    assert bank.count("actions", action="block_card") == 1
    assert bank.card("C001", "4821")["status"] == "blocked"


def test_replacement_on_resume_orders_one_card(bank: Bank) -> None:
    a = bank.order_replacement("task-9", "C001", "4821")
    b = bank.order_replacement("task-9", "C001", "4821")
    assert a["new_card"] == b["new_card"]
    assert bank.count("cards", customer_id="C001") == 3


@pytest.mark.parametrize(
    ("customer", "card", "message"),
    [
        ("C001", "5532", "not one of your cards"),
        ("C001", None, "which card"),
        ("C001", "0000", "no card ending 0000"),
        (None, "4821", "which customer"),
        ("C999", "4821", "no customer C999"),
    ],
)
def test_refusals_change_nothing(
    bank: Bank, customer: str | None, card: str | None, message: str
) -> None:
    with pytest.raises(BankRefusal, match=message):
        bank.block_card("t", customer, card)
    assert bank.count("cards", status="blocked") == 0
    assert bank.count("actions") == 0


def test_dispute_once_per_payment_across_tasks(bank: Bank) -> None:
    first = bank.open_dispute("t1", "C001", "T1002", "not me")
    second = bank.open_dispute("t2", "C001", "T1002", "still not me")
    assert second["already"] is True and second["dispute"] == first["dispute"]
    assert bank.count("disputes") == 1
    with pytest.raises(BankRefusal, match="not on your accounts"):
        bank.open_dispute("t3", "C001", "T1006", "someone else's")


async def test_retried_task_does_not_repeat_its_effect(bank: Bank) -> None:
    # Real clock: the sandbox works in a thread, which a virtual clock would count as idle time.
    async with make_swarm(bank) as s:
        r = await s.run(
            "top up 40 pounds",
            agent="top_ups",
            payload={"customer": "C002", "glitch_after": "top_up"},
        )
    assert r.ok and r.attempts == 2
    assert r.output["repeated"] is True
    assert bank.accounts("C002")[0]["balance_cents"] == 8_000 + 4_000
    assert bank.count("transactions", kind="top_up", account_id="A003") == 1


async def test_resumed_task_with_same_id_blocks_once(bank: Bank) -> None:
    task = Task(text="block card ending 4821", payload={"customer": "C001"}, agent="security")
    async with make_swarm(bank) as s:
        first = await s.run(task)
    async with make_swarm(bank) as s:  # a new process picking the unfinished task up again
        second = await s.run(task.model_copy())
    assert first.output["repeated"] is False
    assert second.output["repeated"] is True
    assert bank.count("actions", task_id=task.id) == 1


async def test_wrong_customer_is_refused_through_the_swarm(bank: Bank) -> None:
    async with make_swarm(bank) as s:
        r = await s.run("block card ending 9012", agent="security", payload={"customer": "C001"})
    assert r.ok and r.output["done"] is False
    assert "not one of your cards" in r.output["refused"]
    assert bank.card("C003", "9012")["status"] == "active"


async def test_lost_card_delegates_the_replacement(bank: Bank) -> None:
    async with make_swarm(bank) as s:
        r = await s.run(
            "I lost my card ending 4821, please block it and send me a new one",
            agent="security",
            payload={"customer": "C001"},
        )
    assert r.output["replacement"]["done"] is True
    new = r.output["replacement"]["new_card"]
    assert bank.card("C001", new)["status"] == "ordered"
    assert bank.card("C001", "4821")["status"] == "replaced"


async def test_slow_core_banking_hits_the_agent_timeout(bank: Bank) -> None:
    async with make_swarm(bank, clock=VirtualClock()) as s:
        r = await s.run(
            "where is my transfer T1006",
            agent="transfers",
            payload={"customer": "C002", "core_latency_s": 30},
        )
    assert r.status.value == "failed" and "timed out" in (r.error or "")


def test_fixtures_and_state_probes(tmp_path: Path) -> None:
    services = bank_pack.sandbox({})
    try:
        assert bank_pack.card_status(services, "4821") == "active"
        assert bank_pack.balance(services, "A001") == 125_000
        assert bank_pack.transaction_status(services, "T1003") == "pending"
        owned = services["bank_owned_dir"]
        assert Path(owned).name.startswith("bank_")
    finally:
        bank_pack.teardown(services)
    assert not Path(owned).exists()
