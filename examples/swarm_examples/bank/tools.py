"""The bank's tools for one task: each reads or changes the sandbox, off the event loop, inside a
recorded tool span, with the task id bound so every change happens once per task.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import TYPE_CHECKING, Any

from swarm.errors import Retryable
from swarm.tools.base import Tool
from swarm_examples.bank.db import DEFAULT_BANK_URL, Bank, BankRefusal

if TYPE_CHECKING:
    from swarm.context import Context

__all__ = ["BANK_SERVICE", "BankRefusal", "BankTools", "bank_of", "default_bank"]

BANK_SERVICE = "bank"
"""The key of the sandbox in `ctx.services` (a suite's `sandbox` fixture puts a fresh one there)."""

_default: Bank | None = None
_default_lock = threading.Lock()


def default_bank() -> Bank:
    """The shared sandbox at $SWARM_BANK_DB (default storage/bank/sandbox.db), seeded on first use.

    Used when a swarm has no `bank` service: `swarm console` and `swarm run` need no setup.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = Bank.create(os.environ.get("SWARM_BANK_DB", DEFAULT_BANK_URL), reset=False)
        return _default


def bank_of(ctx: Context) -> Bank:
    bank = ctx.services.get(BANK_SERVICE)
    return bank if isinstance(bank, Bank) else default_bank()


class BankTools:
    """`BankTools(ctx)`: the tools an agent uses for `ctx.task`, as swarm `Tool`s (so an LLM agent
    could call them too). Call them with `await tools.call("block_card", card="4821")`.

    The sandbox can simulate trouble through the task's payload: `core_latency_s` (every call is
    that slow) and `glitch_after` (the named action succeeds, then the connection drops on the
    first attempt: the retry must not repeat the effect).
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.bank = bank_of(ctx)
        self.task_id = ctx.task.id
        self.customer: str | None = ctx.task.payload.get("customer")
        if self.customer is None and BANK_SERVICE not in ctx.services:
            # The shared sandbox behind `swarm console` / `swarm run`, which send no payload: the
            # person at the keyboard is signed in as $SWARM_BANK_CUSTOMER (default C001). A
            # swarm given its own bank gets no such default: no customer means a refusal.
            self.customer = os.environ.get("SWARM_BANK_CUSTOMER", "C001")
        self.tools = {
            t.name: t
            for t in (
                Tool(self.block_card),
                Tool(self.order_replacement),
                Tool(self.open_dispute),
                Tool(self.top_up),
                Tool(self.cancel_transfer),
                Tool(self.refund_payment),
                Tool(self.lookup_transactions),
                Tool(self.list_cards),
                Tool(self.card_status),
                Tool(self.customer_profile),
            )
        }

    async def call(self, name: str, **arguments: Any) -> Any:
        """Run tool `name` in a span; a BankRefusal passes through for the agent to explain."""
        return await self.ctx.tool(self.tools[name], **arguments)

    async def _db(self, action: str, fn: Any, *args: Any) -> Any:
        latency = float(self.ctx.task.payload.get("core_latency_s", 0) or 0)
        if latency:
            await self.ctx.clock.sleep(latency)
        out = await asyncio.to_thread(fn, *args)
        if self.ctx.task.payload.get("glitch_after") == action and self.ctx.attempt == 1:
            raise Retryable(f"core banking connection dropped after {action} was written")
        return out

    async def block_card(self, card: str | None = None) -> dict[str, Any]:
        """Block one of the customer's cards so nobody can pay with it.

        Args:
            card: the card's last four digits
        """
        return await self._db(  # type: ignore[no-any-return]
            "block_card", self.bank.block_card, self.task_id, self.customer, card
        )

    async def order_replacement(self, card: str | None = None) -> dict[str, Any]:
        """Order a replacement for one of the customer's cards (the old one stops working).

        Args:
            card: the last four digits of the card to replace
        """
        return await self._db(  # type: ignore[no-any-return]
            "order_replacement", self.bank.order_replacement, self.task_id, self.customer, card
        )

    async def open_dispute(self, transaction: str | None, reason: str) -> dict[str, Any]:
        """Open a dispute about one of the customer's payments.

        Args:
            transaction: the payment's reference, such as T1002
            reason: why the customer disputes it
        """
        return await self._db(  # type: ignore[no-any-return]
            "open_dispute", self.bank.open_dispute, self.task_id, self.customer, transaction, reason
        )

    async def top_up(self, amount_cents: int, currency: str = "GBP") -> dict[str, Any]:
        """Add money to the customer's account in `currency`.

        Args:
            amount_cents: the amount in cents
            currency: a three-letter currency code
        """
        return await self._db(  # type: ignore[no-any-return]
            "top_up", self.bank.top_up, self.task_id, self.customer, amount_cents, currency
        )

    async def cancel_transfer(self, transfer: str | None) -> dict[str, Any]:
        """Cancel one of the customer's pending transfers.

        Args:
            transfer: the transfer's reference, such as T1003
        """
        return await self._db(  # type: ignore[no-any-return]
            "cancel_transfer", self.bank.cancel_transfer, self.task_id, self.customer, transfer
        )

    async def refund_payment(self, transaction: str | None) -> dict[str, Any]:
        """Refund one of the customer's completed card payments to their account.

        Args:
            transaction: the payment's reference, such as T1002
        """
        return await self._db(  # type: ignore[no-any-return]
            "refund_payment", self.bank.refund_payment, self.task_id, self.customer, transaction
        )

    async def lookup_transactions(
        self, kind: str | None = None, status: str | None = None, transaction: str | None = None
    ) -> list[dict[str, Any]]:
        """The customer's transactions, newest first.

        Args:
            kind: card_payment, transfer, top_up, cash_withdrawal or fee
            status: completed, pending, declined, reverted or cancelled
            transaction: one reference, such as T1003
        """
        self.bank.customer(self.customer)
        return await self._db(  # type: ignore[no-any-return]
            "lookup",
            lambda: self.bank.transactions(
                str(self.customer), kind=kind, status=status, tx_id=transaction
            ),
        )

    async def list_cards(self) -> list[dict[str, Any]]:
        """The customer's cards and their states."""
        self.bank.customer(self.customer)
        return await self._db("lookup", self.bank.cards, str(self.customer))  # type: ignore[no-any-return]

    async def card_status(self, card: str | None = None) -> dict[str, Any]:
        """One of the customer's cards.

        Args:
            card: the card's last four digits
        """
        return await self._db("lookup", self.bank.card, self.customer, card)  # type: ignore[no-any-return]

    async def customer_profile(self) -> dict[str, Any]:
        """Who the customer is, whether their identity is verified, and their accounts."""
        profile = await self._db("lookup", self.bank.customer, self.customer)
        profile["accounts"] = await asyncio.to_thread(self.bank.accounts, str(self.customer))
        return profile  # type: ignore[no-any-return]
