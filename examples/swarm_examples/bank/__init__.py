"""The bank: ten customer-operations agents and the three-agent engineering desk in one swarm, on a
sandbox core-banking database; its router learns from BANKING77's real customer requests.

    swarm demo bank
    swarm console --agents swarm_examples.bank
    swarm run "I lost my card ending 4821" --agents swarm_examples.bank
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from swarm.agents import Agent, Pack
from swarm_examples import ops
from swarm_examples.bank.agents import CUSTOMER_DESK
from swarm_examples.bank.db import DEFAULT_BANK_URL, Bank, BankRefusal
from swarm_examples.bank.intents import AGENT_INTENTS, INTENT_TO_AGENT, banking77_rows
from swarm_examples.bank.tools import BANK_SERVICE

__all__ = [
    "AGENT_INTENTS",
    "BANK_AGENTS",
    "INTENT_TO_AGENT",
    "PACK",
    "Bank",
    "BankRefusal",
    "training_data",
]

BANK_AGENTS: list[Agent] = [*CUSTOMER_DESK, *ops.ENGINEERING_DESK]
"""One swarm, one router: engineering requests reach the ops agents; customer requests the desk."""

OUT_OF_SCOPE_REQUESTS = [
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


def sandbox(services: dict[str, Any], url: str | None = None) -> dict[str, Any]:
    """A freshly seeded sandbox bank for one suite (a temp SQLite file unless `url` is given)."""
    owned = None
    if url is None:
        owned = tempfile.mkdtemp(prefix="bank_sandbox_")
        url = f"sqlite:///{Path(owned) / 'sandbox.db'}"
    bank = Bank.create(url, reset=True)
    return {BANK_SERVICE: bank, "bank_owned_dir": owned}


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


def training_data() -> list[tuple[str, str]]:
    """BANKING77's 10,003 training texts, each labelled with the agent that answers its intent.
    The router adds every agent's examples and description and the out-of-scope requests.
    BANKING77's test rows are kept out: they measure the router."""
    return [(text, INTENT_TO_AGENT[intent]) for text, intent in banking77_rows("train")]


def seed_demo_sandbox() -> str:
    """A freshly seeded shared sandbox ($SWARM_BANK_DB): what `swarm console` on the bank uses."""
    url = os.environ.get("SWARM_BANK_DB", DEFAULT_BANK_URL)
    Bank.create(url, reset=True).close()
    return f"sandbox bank seeded at {url} (3 customers, 4 accounts, 5 cards)"


PACK = Pack(
    name="bank",
    agents=BANK_AGENTS,
    description="A bank's customer desk and engineering desk on a sandbox core-banking database.",
    training_data=training_data,
    out_of_scope=OUT_OF_SCOPE_REQUESTS,
    fixtures={"sandbox": sandbox, "ops_sandbox": ops.ops_sandbox},
    state={
        "balance": balance,
        "card_status": card_status,
        "cards": cards,
        "count": count,
        "disputes": disputes,
        "transaction_status": transaction_status,
    },
    teardown=teardown,
    demo_setup=seed_demo_sandbox,
    suites=Path(__file__).resolve().parent / "suites",
)
