"""Agents for the store's hostile-value tests (from ../shared/cases/store_surrogate): one returns
text ending in half an emoji (a lone surrogate), as a model output cut mid-character decodes to."""

import json

from swarm import agent


@agent(examples=["greet"], timeout=5)
async def greeter(task, ctx):
    """Answers with emoji and CJK text."""
    return f"Hello 👋 你好 — {task.text}"


@agent(examples=["decode"], timeout=5)
async def decoder(task, ctx):
    """Returns a string holding a lone surrogate, with a span and an error that hold one too."""
    async with ctx.span("tool", "cut \ud83d", note="half \ud83d"):
        pass
    return json.loads('"price: 5 \\ud83d"')
