"""Fixtures for the scenario tests: a tiny agent pack (with fixtures, state and a tool whose
output changes on every call) importable under a unique module name, and a suite writer."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PACK = '''
import random

from swarm import agent


def seed(services, items):
    services["inventory"] = dict(items)


def stock(services, item):
    return services["inventory"].get(item, 0)


FIXTURES = {"seed": seed}
STATE = {"stock": stock}


def quote(item: str) -> dict:
    # A different price on every call: only a replay of the recorded output can repeat it.
    return {"item": item, "price": random.randint(1, 10**12)}


@agent(examples=["buy a lamp", "purchase an item", "order a chair"])
async def shop(task, ctx):
    """Buying things from the shop."""
    item = task.text.split()[-1]
    q = await ctx.tool(quote, item=item)
    inventory = ctx.services["inventory"]
    inventory[item] = inventory.get(item, 0) - 1
    return f"bought {item} for {q['price']}"


@agent(examples=["what is the weather", "will it rain tomorrow"])
async def weather(task, ctx):
    """Weather forecasts."""
    return {"forecast": "sunny", "city": "Paris"}


def is_sunny(output):
    return output.get("forecast") == "sunny" or "not sunny"
'''


@pytest.fixture
def pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The module name of a fresh copy of the tiny pack."""
    name = f"scenario_pack_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "pkgs"
    folder.mkdir()
    (folder / f"{name}.py").write_text(PACK)
    monkeypatch.syspath_prepend(str(folder))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / "suites" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write
