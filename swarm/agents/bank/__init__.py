"""The bank: ten customer-operations agents and the three-agent engineering desk in one swarm, on a
sandbox core-banking database; its router learns from BANKING77's real customer requests.

    swarm console --agents swarm.agents.bank
    swarm run "I lost my card ending 4821" --agents swarm.agents.bank
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from swarm.agents import ops
from swarm.agents.bank.agents import CUSTOMER_DESK
from swarm.agents.bank.db import Bank, BankRefusal
from swarm.agents.bank.intents import AGENT_INTENTS, INTENT_TO_AGENT, banking77_rows
from swarm.agents.bank.tools import BANK_SERVICE
from swarm.agents.base import Agent

__all__ = [
    "AGENTS",
    "AGENT_INTENTS",
    "DEMO_REQUESTS",
    "FIXTURES",
    "INTENT_TO_AGENT",
    "OUT_OF_SCOPE",
    "STATE",
    "Bank",
    "BankRefusal",
    "router_for",
    "setup",
    "teardown",
    "training_data",
]

AGENTS: list[Agent] = [*CUSTOMER_DESK, *ops.ENGINEERING_DESK]
"""One swarm, one router: engineering requests reach the ops agents; customer requests the desk."""

OUT_OF_SCOPE = [
    # small talk and general knowledge
    "hello, how are you today",
    "tell me a joke",
    "what's the weather like tomorrow",
    "what is the capital of France",
    "who won the football match last night",
    "write me a poem about the sea",
    "recommend a good film for tonight",
    "how do I bake sourdough bread",
    "what is the meaning of life",
    "how tall is mount everest",
    "translate good morning into Italian",
    "what time is it in Tokyo",
    "can you help me with my maths homework",
    "who is the president of the United States",
    "sing me a song",
    "what's your favourite colour",
    "are you a robot",
    "how many calories are in a banana",
    "book me a table for two at an Italian restaurant",
    "what should I name my dog",
    "play some music",
    "how far is the moon",
    "set an alarm for 7 am",
    "what is the best pizza topping",
    # other businesses' products and services
    "what is the mortgage rate at Barclays",
    "how do I open an account with HSBC",
    "does Lloyds offer student loans",
    "what is Santander's savings interest rate",
    "can you give me a car insurance quote",
    "how much is home insurance for a flat",
    "I want to buy shares in Apple",
    "should I invest in gold or bonds",
    "what pension plan should I choose",
    "what is the tax code for my payslip",
    "how do I file my self assessment tax return",
    "where is my Amazon parcel",
    "cancel my Netflix subscription",
    "my electricity bill is too high, switch my energy supplier",
    "book a flight to Madrid",
    "how do I renew my passport",
    "my broadband is down, call my internet provider",
    "can I get a mortgage to buy a house",
    "what is the interest rate on a personal loan from NatWest",
    "help me claim on my travel insurance",
    "what will the stock market do next week",
    # technical or personal requests for neither desk
    "fix my laptop, it won't turn on",
    "my home wifi keeps dropping",
    "write a python function that sorts a list",
    "how do I install Windows on my PC",
    "my printer is out of ink",
    "reset my Gmail password",
    "my Instagram account was hacked",
    "explain how a blockchain works",
    "what is the best smartphone to buy",
    "help me write a cover letter for a job",
    "how do I lose weight fast",
    "my car makes a strange noise",
    "what are the symptoms of the flu",
    "plan a holiday in Greece for me",
    "give me a recipe for chicken curry",
    "what is the population of Brazil",
    "who wrote Pride and Prejudice",
]
"""Requests neither desk should take: small talk, other firms' products, personal tech help."""

DEMO_REQUESTS = [
    "I still have not received my new card",
    "I lost my card ending 4821, please block it and send me a new one",
    "I don't recognise the payment T1002 at ElectroMart",
    "what is the exchange rate from pounds to euros",
    "top up 50 pounds",
    "triage core-banking.log",
    "what is the mortgage rate at Barclays",
]


def sandbox(services: dict[str, Any], url: str | None = None) -> dict[str, Any]:
    """A freshly seeded sandbox bank for one suite (a temp SQLite file unless `url` is given)."""
    owned = None
    if url is None:
        owned = tempfile.mkdtemp(prefix="bank_sandbox_")
        url = f"sqlite:///{Path(owned) / 'sandbox.db'}"
    bank = Bank.create(url, reset=True)
    return {BANK_SERVICE: bank, "bank_owned_dir": owned}


def setup(services: dict[str, Any]) -> None:
    """Nothing to do before the fixtures: the `sandbox` fixture opens the bank a suite uses."""


def teardown(services: dict[str, Any]) -> None:
    bank = services.get(BANK_SERVICE)
    if isinstance(bank, Bank):
        bank.close()
    owned = services.get("bank_owned_dir")
    if owned:
        shutil.rmtree(owned, ignore_errors=True)
    ops.teardown(services)


def _bank(services: dict[str, Any]) -> Bank:
    bank = services.get(BANK_SERVICE)
    if not isinstance(bank, Bank):
        raise RuntimeError("the suite has no sandbox: add `setup: [{fixture: sandbox}]`")
    return bank


def card_status(services: dict[str, Any], card: str) -> str:
    """The status of the card ending `card`: active, blocked, ordered or replaced."""
    bank = _bank(services)
    for customer in ("C001", "C002", "C003"):
        for c in bank.cards(customer):
            if c["last4"] == card:
                return str(c["status"])
    return "missing"


def cards(services: dict[str, Any], customer: str) -> list[dict[str, Any]]:
    return _bank(services).cards(customer)


def count(services: dict[str, Any], table: str, **where: Any) -> int:
    """Rows of `table` (customers, accounts, cards, transactions, disputes, actions) matching."""
    return _bank(services).count(table, **where)


def disputes(services: dict[str, Any], customer: str | None = None) -> list[dict[str, Any]]:
    return _bank(services).disputes(customer)


def balance(services: dict[str, Any], account: str) -> int:
    """The balance of `account` in cents."""
    bank = _bank(services)
    for customer in ("C001", "C002", "C003"):
        for a in bank.accounts(customer):
            if a["id"] == account:
                return int(a["balance_cents"])
    raise KeyError(account)


def transaction_status(services: dict[str, Any], transaction: str) -> str:
    bank = _bank(services)
    for customer in ("C001", "C002", "C003"):
        found = bank.transactions(customer, tx_id=transaction)
        if found:
            return str(found[0]["status"])
    return "missing"


FIXTURES = {"sandbox": sandbox, "ops_sandbox": ops.ops_sandbox}
STATE = {
    "balance": balance,
    "card_status": card_status,
    "cards": cards,
    "count": count,
    "disputes": disputes,
    "transaction_status": transaction_status,
}


def training_data() -> list[tuple[str, str]]:
    """The bank router's training rows: BANKING77's 10,003 training texts relabelled with the
    agent that answers their intent, every agent's examples and description, and OUT_OF_SCOPE
    labelled `oos`. BANKING77's test rows are kept out: they measure the router."""
    rows = [(text, INTENT_TO_AGENT[intent]) for text, intent in banking77_rows("train")]
    for a in AGENTS:
        rows += [(e, a.name) for e in a.examples]
        if a.description:
            rows.append((a.description, a.name))
    rows += [(t, "oos") for t in OUT_OF_SCOPE]
    return rows


def router_for(
    registry: Any, models_dir: str | Path = "storage/models", *, console: Any = None
) -> Any:
    """The learned bank router, kept in `models_dir/bank` (its own CURRENT, so it never replaces
    another pack's router), trained from `training_data()` when missing or out of date."""
    from swarm.agents.bank.training import ensure_bank_router

    return ensure_bank_router(Path(models_dir) / "bank", registry, console=console)
