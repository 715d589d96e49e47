"""Defining agents: classes, the decorator, the registry, module and entry-point discovery."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from swarm import Agent, AgentDefinitionError, AgentNotFound, AgentRegistry, ConfigError, agent
from swarm.agents import Pack, agents_in, load_pack


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
    assert "plugged" in [a.name for a in found]  # beside any installed pack (the examples)
    assert reg.get("plugged").description == "from a plug-in"


def test_broken_entry_point_names_itself(importable: Path) -> None:
    dist = importable / "tmpagents_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tmpagents-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[swarm.agents]\nbroken = tmpagents_missing:x\n")
    with pytest.raises(AgentDefinitionError, match="entry point 'broken'"):
        AgentRegistry().load_entry_points()


# ---- packs -------------------------------------------------------------------------------------


def test_a_module_exports_one_pack(importable: Path) -> None:
    _write_module(
        importable,
        "tmpagents_pack",
        """
        from swarm import Pack, agent

        @agent(examples=["open a ticket"])
        async def desk(task, ctx):
            return "ok"

        def seed(services, n=1):
            return {"seeded": n}

        PACK = Pack(
            name="helpdesk",
            agents=[desk],
            training_data=lambda: [("my screen is broken", "desk")],
            out_of_scope=["tell me a joke"],
            fixtures={"seed": seed},
            demo_requests=["open a ticket", "tell me a joke"],
            demo_trace="open a ticket",
        )
        AGENTS = []  # ignored: the pack is what the module exports
        """,
    )
    reg = AgentRegistry()
    reg.load_module("tmpagents_pack")
    (pack,) = reg.packs
    assert reg.names == ["desk"] and reg.out_of_scope == ["tell me a joke"]
    assert pack.name == "helpdesk" and pack.module == "tmpagents_pack"
    assert pack.training_rows() == [("my screen is broken", "desk")]
    assert pack.fixtures["seed"]({}, n=2) == {"seeded": 2}


def test_an_old_style_module_becomes_a_pack(importable: Path) -> None:
    _write_module(
        importable,
        "tmpagents_old",
        '''
        """An old-style pack.

        More text."""
        from swarm import agent

        @agent
        async def one(task, ctx):
            return 1

        def teardown(services):
            services["torn"] = True

        AGENTS = [one]
        OUT_OF_SCOPE = ["tell me a joke"]
        FIXTURES = {"f": lambda services: None}
        STATE = {"s": lambda services: 1}
        DEMO_REQUESTS = ["hello"]
        ''',
    )
    pack = load_pack("tmpagents_old")
    assert (pack.name, pack.module, pack.description) == (
        "tmpagents_old",
        "tmpagents_old",
        "An old-style pack.",
    )
    assert [a.name for a in pack.agent_list()] == ["one"]
    assert pack.out_of_scope == ("tell me a joke",) and pack.demo_requests == ("hello",)
    assert set(pack.fixtures) == {"f"} and set(pack.state) == {"s"}
    assert pack.setup is None and pack.teardown is not None and pack.training_data is None
    services: dict[str, object] = {}
    pack.teardown(services)
    assert services == {"torn": True}


def test_an_entry_point_may_name_a_pack(importable: Path) -> None:
    _write_module(
        importable,
        "tmpagents_ep",
        """
        from swarm import Pack, agent

        @agent
        async def plugged(task, ctx):
            return 1

        PACK = Pack(name="plugged", agents=[plugged], out_of_scope=["sing me a song"])
        """,
    )
    dist = importable / "tmpagents_ep-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tmpagents-ep\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[swarm.agents]\nplugged = tmpagents_ep:PACK\n")
    reg = AgentRegistry()
    reg.load_entry_points()
    assert "plugged" in reg and "sing me a song" in reg.out_of_scope
    assert any(p.name == "plugged" and p.module == "tmpagents_ep" for p in reg.packs)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"out_of_scope": "tell me a joke"}, "`out_of_scope` must be a list of strings"),
        ({"fixtures": {"seed": 3}}, "`fixtures` must map names to functions"),
        ({"training_data": ["row"]}, "`training_data` must be a function or None"),
        ({"demo_trace": "not sent"}, "`demo_trace` must be one of `demo_requests`"),
        ({"name": ""}, "`name` must be a non-empty string"),
    ],
)
def test_a_bad_pack_field_names_the_pack_and_the_field(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Pack(**{"name": "p", "agents": [Cards()], **fields})  # type: ignore[arg-type]


def test_a_bad_training_row_names_the_pack_and_the_row() -> None:
    pack = Pack(name="p", agents=[Cards()], training_data=lambda: [("ok", "cards"), ("no label",)])
    with pytest.raises(ConfigError, match=r"pack 'p': training_data\(\) row 1 is \('no label',\)"):
        pack.training_rows()


def test_old_style_out_of_scope_must_be_strings(importable: Path) -> None:
    _write_module(
        importable,
        "tmpagents_bad",
        """
        from swarm import agent

        @agent
        async def a(task, ctx):
            return 1

        OUT_OF_SCOPE = "tell me a joke"
        """,
    )
    with pytest.raises(ConfigError, match="tmpagents_bad.OUT_OF_SCOPE must be a list of strings"):
        load_pack("tmpagents_bad")
