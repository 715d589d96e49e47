"""Defining agents: classes, the decorator, the registry, module and entry-point discovery."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from swarm import Agent, AgentDefinitionError, AgentNotFound, AgentRegistry, ConfigError, agent
from swarm.agents import agents_in


class Cards(Agent):
    name = "cards"
    description = "Card orders and blocks"
    examples = ["block my card"]
    max_concurrency = 2

    async def run(self, task, ctx):
        return "ok"


@agent(examples=["send money"], timeout=5, retries=2)
async def transfers(task, ctx):
    """Transfers between accounts."""
    return "sent"


def test_decorator_keeps_options_and_docstring() -> None:
    assert transfers.name == "transfers"
    assert transfers.description == "Transfers between accounts."
    assert list(transfers.examples) == ["send money"]
    assert (transfers.timeout, transfers.retries) == (5, 2)


async def test_decorated_function_runs() -> None:
    from swarm import Task

    assert await transfers.run(Task(text="x"), None) == "sent"  # type: ignore[arg-type]


def test_registry_registers_classes_and_instances() -> None:
    reg = AgentRegistry([Cards, transfers])
    assert reg.names == ["cards", "transfers"]
    assert reg.get("cards").max_concurrency == 2
    assert "cards" in reg and len(reg) == 2


def test_duplicate_name_names_both_origins() -> None:
    class Other(Cards):
        async def run(self, task, ctx):
            return "other"

    reg = AgentRegistry([Cards])
    with pytest.raises(AgentDefinitionError, match="two agents are named 'cards'") as err:
        reg.register(Other)
    assert "Cards" in str(err.value) and "Other" in str(err.value)


def test_missing_run_is_an_error_naming_the_agent() -> None:
    class NoRun(Agent):
        name = "norun"

    with pytest.raises(AgentDefinitionError, match=r"agent 'norun' \(.*NoRun\) has no `run`"):
        AgentRegistry([NoRun])


def test_sync_run_is_rejected() -> None:
    class Sync(Agent):
        name = "sync"

        def run(self, task, ctx):  # type: ignore[override]
            return "x"

    with pytest.raises(AgentDefinitionError, match="must be `async def`"):
        AgentRegistry([Sync])


def test_wrong_signature_is_rejected() -> None:
    with pytest.raises(AgentDefinitionError, match=r"must take \(task, ctx\), it takes \(task\)"):

        @agent
        async def lonely(task):  # type: ignore[no-untyped-def]
            return "x"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_concurrency", 0, "max_concurrency"),
        ("timeout", -1, "timeout"),
        ("retries", -2, "retries"),
        ("examples", "one string", "examples"),
        ("name", "", "no name"),
    ],
)
def test_bad_limits_are_rejected(field: str, value: object, message: str) -> None:
    a = Cards()
    setattr(a, field, value)
    with pytest.raises(AgentDefinitionError, match=message):
        AgentRegistry([a])


def test_unknown_agent_lists_known_ones() -> None:
    with pytest.raises(AgentNotFound, match=r"no agent named 'nope' \(agents: cards\)"):
        AgentRegistry([Cards]).get("nope")


def _write_module(root: Path, name: str, body: str) -> None:
    (root / f"{name}.py").write_text(textwrap.dedent(body))


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("tmpagents")]:
        del sys.modules[mod]


def test_module_discovery_finds_classes_and_functions(importable: Path) -> None:
    _write_module(
        importable,
        "tmpagents_a",
        """
        from swarm import Agent, agent
        from swarm.agents import Agent as Imported  # imported names are not agents of this module

        class Weather(Agent):
            name = "weather"
            async def run(self, task, ctx):
                return "sunny"

        @agent
        async def jokes(task, ctx):
            return "ha"
        """,
    )
    reg = AgentRegistry()
    reg.load_module("tmpagents_a")
    assert reg.names == ["jokes", "weather"]


def test_module_with_agents_list_and_attribute_path(importable: Path) -> None:
    _write_module(
        importable,
        "tmpagents_b",
        """
        from swarm import agent

        @agent
        async def one(task, ctx):
            return 1

        @agent
        async def two(task, ctx):
            return 2

        AGENTS = [one]
        PAIR = [one, two]
        OUT_OF_SCOPE = ["tell me a joke"]
        """,
    )
    assert [a.name for a in agents_in("tmpagents_b")] == ["one"]
    reg = AgentRegistry()
    reg.load_module("tmpagents_b")
    assert reg.out_of_scope == ["tell me a joke"]
    assert [a.name for a in agents_in("tmpagents_b:PAIR")] == ["one", "two"]


def test_module_errors_are_clear(importable: Path) -> None:
    _write_module(importable, "tmpagents_empty", "x = 1\n")
    with pytest.raises(ConfigError, match="cannot import agents module 'tmpagents_nope'"):
        AgentRegistry().load_module("tmpagents_nope")
    with pytest.raises(ConfigError, match="defines no agents"):
        AgentRegistry().load_module("tmpagents_empty")


def test_entry_points_are_discovered(importable: Path) -> None:
    _write_module(
        importable,
        "tmpagents_plugin",
        """
        from swarm import agent

        @agent(description="from a plug-in")
        async def plugged(task, ctx):
            return "plugged in"
        """,
    )
    dist = importable / "tmpagents_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tmpagents-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[swarm.agents]\nplugged = tmpagents_plugin:plugged\n")
    reg = AgentRegistry()
    found = reg.load_entry_points()
    assert [a.name for a in found] == ["plugged"]
    assert reg.get("plugged").description == "from a plug-in"


def test_broken_entry_point_names_itself(importable: Path) -> None:
    dist = importable / "tmpagents_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tmpagents-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[swarm.agents]\nbroken = tmpagents_missing:x\n")
    with pytest.raises(AgentDefinitionError, match="entry point 'broken'"):
        AgentRegistry().load_entry_points()
