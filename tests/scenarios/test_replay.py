"""Record and replay: byte-identical outputs with recorded tool answers, a changed router shows as
moved tasks, `diff` of two runs, a run saved as a suite that passes, and the Context hook."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from swarm import Context, Swarm, Task, agent
from swarm.agents import AgentRegistry
from swarm.errors import LLMStatusError, ReplayedError, ToolError
from swarm.failure import exception_record, rebuild_exception
from swarm.scenarios import (
    TOOL_REPLAY_SERVICE,
    ScenarioRunner,
    ToolReplay,
    diff_runs,
    load_suite,
    load_suites,
    replay_run,
    save_suite,
)
from swarm.scenarios.views import DiffView
from swarm.testing import FakeRouter
from swarm.testing.llm import ScriptedLLM
from swarm.trace import TraceStore

SUITE = """
name: shop
agents: {pack}
router: keyword
setup:
  - {{fixture: seed, args: {{items: {{lamp: 3}}}}}}
scenarios:
  - name: lamp
    steps: [{{user: buy a lamp, expect: {{agent: shop}}}}]
  - name: chair then weather
    steps:
      - {{user: purchase an item chair, expect: {{agent: shop}}}}
      - {{user: will it rain tomorrow, expect: {{agent: weather}}}}
  - name: off topic
    steps: [{{user: recite a sonnet, expect: {{out_of_scope: true}}}}]
"""


@pytest.fixture
def recorded(pack: str, write: Callable[[str, str], Path], store: TraceStore) -> str:
    loaded = load_suites([write("shop.yaml", SUITE.format(pack=pack))])
    report = ScenarioRunner(db=store).run_sync(loaded.suites)
    assert report.passed, [s.reasons for s in report.scenarios]
    run_id = report.suites[0].run_id
    assert run_id is not None
    return run_id


async def test_replay_reproduces_outputs_byte_identically(recorded: str, store: TraceStore) -> None:
    outcome = await replay_run(store, recorded)
    assert outcome.diff.changes == [] and not outcome.diff.regressed
    assert outcome.diff.compared == 4 and outcome.tools_served == 2
    old = {t["text"]: t["output"] for t in store.tasks(run_id=recorded, limit=None)}
    new = {r.text: r.output for r in outcome.records}
    assert new == old
    assert new["buy a lamp"].startswith("bought lamp for ")
    replayed = store.spans(run_id=outcome.run_id, kind="tool")
    assert [s["attributes"]["replayed"] for s in replayed] == [True, True]
    run = store.run(outcome.run_id or "")
    assert run is not None and run["kind"] == "replay" and run["meta"]["replays"] == recorded


async def test_a_live_run_differs_where_the_replay_does_not(
    recorded: str, store: TraceStore, pack: str
) -> None:
    # The tool's price is random: without the recording, outputs differ. This proves the
    # replay's identical outputs come from the recorded tool answers.
    async with Swarm(
        pack, router=FakeRouter(default="shop"), db=None, services={"inventory": {}}
    ) as s:
        result = await s.run("buy a lamp")
    old = next(t for t in store.tasks(run_id=recorded, limit=None) if t["text"] == "buy a lamp")
    assert result.output != old["output"]


async def test_replay_with_another_router_reports_the_moved_tasks(
    recorded: str, store: TraceStore
) -> None:
    outcome = await replay_run(store, recorded, router=FakeRouter(default="weather"))
    moved = [c for c in outcome.diff.changes if c.kind == "routed differently"]
    assert sorted(c.text for c in moved) == [
        "buy a lamp",
        "purchase an item chair",
        "recite a sonnet",
    ]
    lamp = next(c for c in moved if c.text == "buy a lamp")
    assert (lamp.before, lamp.after) == ("shop", "weather")
    assert outcome.diff.regressed
    assert any(c.kind == "output differs" for c in outcome.diff.changes)
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(DiffView(outcome.diff))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "routed differently" in text and "3 routed differently" in text


async def test_diff_lists_moved_tasks(recorded: str, store: TraceStore) -> None:
    outcome = await replay_run(
        store, recorded, router=FakeRouter({"lamp": "weather"}, default="shop")
    )
    assert outcome.run_id is not None
    diff = diff_runs(store, recorded, outcome.run_id[:20])  # a unique prefix will do
    kinds = {(c.kind, c.text) for c in diff.changes}
    assert ("routed differently", "buy a lamp") in kinds
    assert ("routed differently", "will it rain tomorrow") in kinds  # now sent to shop
    assert ("routed differently", "recite a sonnet") in kinds
    assert diff.compared == 4 and diff.regressed
    assert diff_runs(store, recorded, recorded).changes == []


async def test_replay_without_a_recording_stays_offline(recorded: str, store: TraceStore) -> None:
    replay = ToolReplay([], {})

    class _Task:
        text = "x"

    with pytest.raises(ToolError, match="no recorded output for tool 'quote'"):
        await replay.serve(_Task(), "quote", {"item": "x"}, lambda: 1)  # type: ignore[arg-type]
    live = ToolReplay([], {}, live=True)
    assert await live.serve(_Task(), "quote", {}, lambda: 7) == (7, False)  # type: ignore[arg-type]


async def test_context_tool_consults_the_replay_service(pack: str) -> None:
    calls: list[object] = []

    class Served:
        async def serve(self, task, name, arguments, call):  # type: ignore[no-untyped-def]
            calls.append((task.text, name, arguments))
            return {"item": "lamp", "price": 42}, True

    services = {"inventory": {}, TOOL_REPLAY_SERVICE: Served()}
    async with Swarm(pack, router=FakeRouter(default="shop"), db=None, services=services) as s:
        result = await s.run("buy a lamp")
    assert result.output == "bought lamp for 42"
    assert calls == [("buy a lamp", "quote", {"item": "lamp"})]


def test_save_suite_produces_a_suite_that_loads_and_passes(
    recorded: str, store: TraceStore, tmp_path: Path
) -> None:
    path = save_suite(store, recorded, tmp_path / "saved.yaml")
    suite = load_suite(path)
    assert suite.router == "keyword" and suite.setup[0].fixture == "seed"
    names = [s.name for s in suite.scenarios]
    assert len(names) == 3  # one per session: the two-step conversation stays one scenario
    convo = next(s for s in suite.scenarios if len(s.steps) == 2)
    assert convo.steps[1].expect.output is not None
    assert convo.steps[1].expect.output.equals == {"forecast": "sunny", "city": "Paris"}
    # Outputs with a random price cannot pass a fresh run; the routing and statuses must.
    for s in suite.scenarios:
        for step in s.steps:
            if step.expect.agent == "shop":
                step.expect.output = None
    report = ScenarioRunner().run_sync([suite])
    assert report.passed, [s.reasons for s in report.scenarios]


# ---- recorded failures come back as their own class ----------------------------------------


class OutOfStock(Exception):
    """A domain refusal whose `__init__` does not take its `args` (kw-only, extra state)."""

    def __init__(self, item: str, *, left: int) -> None:
        super().__init__(f"{item}: only {left} left")
        self.item = item
        self.left = left


def reserve(item: str) -> str:
    raise OutOfStock(item, left=0)


@agent(examples=["reserve a lamp"])
async def stockist(task: Task, ctx: Context) -> dict[str, object]:
    """Reserves items; a refusal from the stock tool is answered, not raised."""
    try:
        return {"reserved": await ctx.tool(reserve, item=task.text.split()[-1])}
    except OutOfStock as exc:
        return {"refused": str(exc), "left": exc.left, "item": exc.item}


async def test_a_tool_exception_the_agent_catches_is_replayed_as_the_same_class(
    store: TraceStore,
) -> None:
    async with Swarm([stockist], router=FakeRouter(default="stockist"), db=store) as s:
        first = await s.run("reserve a lamp")
        run_id = s.run_id
    assert first.output == {"refused": "lamp: only 0 left", "left": 0, "item": "lamp"}
    assert run_id is not None
    (span,) = store.spans(run_id=run_id, kind="tool")
    assert span["attributes"]["exception"]["type"].endswith(":OutOfStock")
    outcome = await replay_run(
        store, run_id, agents=AgentRegistry([stockist]), router=FakeRouter(default="stockist")
    )
    assert outcome.diff.changes == [] and outcome.tools_served == 1
    assert outcome.records[0].output == first.output


def test_rebuild_exception_keeps_class_args_and_state() -> None:
    again = rebuild_exception(exception_record(OutOfStock("chair", left=2)))
    assert type(again) is OutOfStock and str(again) == "chair: only 2 left"
    assert isinstance(again, OutOfStock) and (again.item, again.left) == ("chair", 2)
    status = rebuild_exception(exception_record(LLMStatusError("busy", status_code=503, body="b")))
    assert isinstance(status, LLMStatusError) and (status.status_code, status.body) == (503, "b")
    err = rebuild_exception(exception_record(OSError(2, "gone")))
    assert isinstance(err, FileNotFoundError) and err.errno == 2


@pytest.mark.parametrize(
    ("record", "shown"),
    [
        # A module nobody imported: replay never imports code a trace store names.
        ({"type": "no_such_module:Boom", "args": ["x"], "message": "x", "exact": True}, "Boom: x"),
        # A name that is not an exception class.
        ({"type": "json:dumps", "args": ["x"], "message": "x", "exact": True}, "dumps: x"),
        # Arguments that were not JSON when recorded.
        (
            {"type": "builtins:ValueError", "args": ["<obj>"], "message": "<obj>", "exact": False},
            "ValueError: <obj>",
        ),
        # A recorded message the rebuilt instance does not reproduce.
        (
            {"type": "builtins:KeyError", "args": ["k"], "message": "other", "exact": True},
            "KeyError: other",
        ),
    ],
)
def test_an_exception_that_cannot_be_rebuilt_is_a_replayed_tool_error(
    record: dict[str, object], shown: str
) -> None:
    again = rebuild_exception(record)
    assert type(again) is ReplayedError and isinstance(again, ToolError)
    assert str(again) == shown and again.original == record["type"]


def test_an_exception_with_non_json_arguments_is_recorded_as_inexact() -> None:
    record = exception_record(ValueError(object()))
    assert record["exact"] is False and record["type"] == "builtins:ValueError"
    assert type(rebuild_exception(record)) is ReplayedError


@agent(examples=["ask the model"])
async def patient(task: Task, ctx: Context) -> dict[str, object]:
    """Asks the model; a busy endpoint is answered, not raised."""
    try:
        return {"answer": (await ctx.llm.chat([task.text])).content}
    except LLMStatusError as exc:
        return {"busy": exc.status_code}


async def test_an_llm_error_the_agent_catches_is_replayed_as_the_same_class(
    store: TraceStore,
) -> None:
    busy = LLMStatusError("busy", status_code=503, body="")
    llm = ScriptedLLM([busy, "forty-two"])
    async with Swarm([patient], router=FakeRouter(default="patient"), db=store, llm=llm) as s:
        # One session: the replay runs its tasks in order, so the recorded order holds.
        first = [(await s.run("ask the model", session="s1")).output for _ in range(2)]
        run_id = s.run_id
    assert first == [{"busy": 503}, {"answer": "forty-two"}] and run_id is not None
    outcome = await replay_run(
        store, run_id, agents=AgentRegistry([patient]), router=FakeRouter(default="patient")
    )
    assert outcome.diff.changes == [] and outcome.diff.compared == 2
    assert [r.output for r in outcome.records] == first
