"""The agents behind the page's browser tests: a few quick desks, one that delegates (so a task
has a tree), and one that waits for a person's approval (`ctx.approve`)."""

from __future__ import annotations

import asyncio

from swarm import Agent


class Cards(Agent):
    name = "cards"
    description = "Card deliveries, blocks and replacements"
    examples = ["my card has not arrived", "block my card", "order a replacement card"]

    async def run(self, task, ctx):  # type: ignore[no-untyped-def]
        async with ctx.span("tool", "card_status", card="1234"):
            await asyncio.sleep(0.05)
        return "card 1234 is on its way"


class Accounts(Agent):
    name = "accounts"
    description = "Balances and statements"
    examples = ["what is my account balance", "show my statement", "open a savings account"]

    async def run(self, task, ctx):  # type: ignore[no-untyped-def]
        async with ctx.span("tool", "balance"):
            await asyncio.sleep(0.02)
        return {"balance": "120.00", "currency": "EUR"}


class Disputes(Agent):
    name = "disputes"
    description = "Payments a customer does not recognise"
    examples = ["I don't recognise this payment", "dispute a transaction", "unknown charge"]

    async def run(self, task, ctx):  # type: ignore[no-untyped-def]
        card = await ctx.delegate("is my card blocked?", agent="cards")
        async with ctx.span("tool", "open_dispute"):
            await asyncio.sleep(0.03)
        return {"dispute": "opened", "card": card.output}


class Refunds(Agent):
    name = "refunds"
    description = "Refunds to a customer's card, once a person approves"
    examples = ["refund my last payment", "I want a refund", "give me my money back"]

    async def run(self, task, ctx):  # type: ignore[no-untyped-def]
        async with ctx.span("tool", "find_payment"):
            await asyncio.sleep(0.01)
        approved = await ctx.approve(
            "refund 120.00 to card ending 4821?", details={"amount": "120.00", "card": "4821"}
        )
        if not approved:
            return {"refund": "refused"}
        async with ctx.span("tool", "refund"):
            await asyncio.sleep(0.01)
        return {"refund": "sent", "amount": "120.00"}


class Letters(Agent):
    name = "letters"
    description = "Writes letters to customers, streamed as it writes (as an LLM would)"
    examples = ["write a letter to the customer", "draft a reply letter"]

    async def run(self, task, ctx):  # type: ignore[no-untyped-def]
        words = ["Dear ", "customer, ", "your card ", "is on ", "its way."]
        for word in words:
            ctx.publish("token", {"text": word})
            await asyncio.sleep(0.02)
        return "".join(words)


AGENTS = [Cards, Accounts, Disputes, Refunds, Letters]
