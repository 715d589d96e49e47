"""An agents module as text, for tests that write it into a folder and run commands there."""

AGENTS_MODULE = """
from swarm.agents import Agent


class Cards(Agent):
    name = "cards"
    description = "Card orders, deliveries and blocks"
    examples = ["my card has not arrived", "block my card", "order a new card", "card stolen"]

    async def run(self, task, ctx):
        return "ok"


class Travel(Agent):
    name = "travel"
    description = "Flights and hotels"
    examples = ["book a flight", "find a hotel", "cancel my flight", "hotel for two nights"]

    async def run(self, task, ctx):
        return "ok"
"""
