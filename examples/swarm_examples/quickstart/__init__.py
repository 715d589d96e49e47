"""A small shop's help desk: four agents, one delegation, one handoff. `swarm demo quickstart`
runs it; `suites/helpdesk.yaml` is its acceptance suite.

Run your own requests against it:  swarm run "where is my parcel" --agents swarm_examples.quickstart
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from swarm import Agent, Handoff, Pack, Task, agent
from swarm.context import Context

ORDERS = {"A100": "shipped on Monday, arriving Thursday", "A200": "being packed"}


class Orders(Agent):
    name = "orders"
    description = "Order status, delivery dates, parcels and returns of goods."
    examples = [
        "where is my order",
        "my parcel has not arrived yet",
        "when will my package be delivered",
        "track order A100",
        "has my order shipped",
        "I want to return the shoes I bought",
        "the delivery is late",
        "can I change the delivery address of my order",
        "the courier lost my package",
        "how do I send an item back",
        "what is the status of order A200",
        "my order arrived damaged",
    ]

    async def run(self, task: Task, ctx: Context) -> str | Handoff:
        text = task.text.lower()
        if "charged" in text or "refund" in text:
            return Handoff("billing", "money questions belong to billing")
        order = next((o for o in ORDERS if o.lower() in text), "A100")
        async with ctx.span("tool", "lookup_order", order=order) as span:
            await asyncio.sleep(0.001)  # a database round trip
            status = ORDERS[order]
            span.set(status=status)
        return f"Order {order} is {status}."


class Billing(Agent):
    name = "billing"
    description = "Invoices, payments, charges and refunds."
    examples = [
        "I was charged twice",
        "please send me my invoice",
        "I want a refund for order A100",
        "why was my card charged",
        "which payment methods do you accept",
        "my payment failed",
        "can I pay by bank transfer",
        "I need a receipt for my purchase",
        "the price I paid is wrong",
        "refund my money",
        "there is an unknown charge on my statement",
        "update my billing address",
    ]
    retries = 2

    async def run(self, task: Task, ctx: Context) -> dict[str, str]:
        if "refund" in task.text.lower():
            # A refund needs the order's state: ask the orders desk, as a real desk would.
            order = await ctx.delegate("what is the status of order A100", agent="orders")
            return {"refund": "approved", "order": str(order.output)}
        return {"invoice": "sent to your e-mail address"}


@agent(
    examples=[
        "I forgot my password",
        "I can't log in to my account",
        "how do I change my e-mail address",
        "delete my account",
        "my account is locked",
        "reset my password please",
        "how do I turn on two-factor authentication",
        "someone else logged into my account",
        "change my username",
        "I did not get the verification e-mail",
    ],
    max_concurrency=4,
)
async def accounts(task: Task, ctx: Context) -> str:
    """Log-in problems, passwords, profile and account settings."""
    return "We sent a link to reset your password to your e-mail address."


@agent(
    examples=[
        "the website is not loading",
        "the app crashes when I open it",
        "I get an error at checkout",
        "the page shows error 500",
        "your mobile app won't install",
        "the search on your site is broken",
        "images are not loading on the product page",
        "the app is very slow",
        "I can't add items to my basket",
        "the checkout button does nothing",
    ],
    timeout=5,
)
async def tech_support(task: Task, ctx: Context) -> str:
    """Website and app problems: errors, crashes, pages that do not load."""
    return "Thanks, we opened a ticket with the web team; try clearing your browser cache."


AGENTS = [Orders(), Billing(), accounts, tech_support]

OUT_OF_SCOPE = [
    "what is the capital of France",
    "tell me a joke",
    "what's the weather like tomorrow",
    "who won the football match yesterday",
    "write me a poem about the sea",
    "how do I cook pasta",
    "what is the meaning of life",
    "recommend a good movie",
    "how tall is mount everest",
    "translate hello into Spanish",
    "what time is it in Tokyo",
    "can you help me with my maths homework",
]
"""Requests none of these agents should take: the router learns to reject them."""

DEMO_REQUESTS = [
    "where is my parcel? order A100",
    "I was charged twice for the same order",
    "I want a refund for my order",
    "I forgot my password and can't log in",
    "the checkout page shows an error",
    "my parcel came but I was charged twice for it",
    "what is the capital of France",
    "tell me a joke about cats",
]

DEMO_TRACE = "I want a refund for my order"
"""The request whose trace the demo draws: billing delegates to orders."""

PACK = Pack(
    name="quickstart",
    agents=AGENTS,
    description="A small shop's help desk: orders, billing, accounts and tech support.",
    out_of_scope=OUT_OF_SCOPE,
    demo_requests=DEMO_REQUESTS,
    demo_trace=DEMO_TRACE,
    suites=Path(__file__).resolve().parent / "suites",
)
