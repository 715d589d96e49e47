"""The events the scheduler publishes, seen through `Swarm.stream` and `Swarm.events`: the exact
sequence for each way a task can go, with tracing off and on (a real SQLite file)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from swarm import Agent, Handoff, Retryable, RetryPolicy, Swarm, TaskStatus, TraceStore, agent
from swarm.events import Event, EventBus
from swarm.llm import LLMAgent
from swarm.testing import FakeRouter, ScriptedLLM


@agent
async def echo(task, ctx):
    return task.text.upper()


def lookup(code: str) -> str:
    return f"card {code}"


@agent
async def cards(task, ctx):
    return await ctx.tool(lookup, code="4821")


class Teller(LLMAgent):
    name = "teller"
    description = "Tells things"
    stream = True


@pytest.fixture(params=["untraced", "traced"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    yield None if request.param == "untraced" else f"sqlite:///{tmp_path / 'events.db'}"


RULES = {"card": "cards", "plan": "planner", "hand": "front", "flaky": "flaky", "boom": "boom"}


@asynccontextmanager
async def swarm_of(
    agents: list[Any], db: str | None = None, **options: Any
) -> AsyncIterator[Swarm]:
    router = options.pop("router", None) or FakeRouter(RULES | {"wait": "waiter"})
    async with Swarm(agents, router=router, db=db, **options) as swarm:
        yield swarm


async def collect(swarm: Swarm, text: str, **fields: Any) -> list[Event]:
    async with aclosing(swarm.stream(text, **fields)) as events:
        return [e async for e in events]


def kinds(events: list[Event]) -> list[str]:
    return [e.kind if e.kind != "span" else f"span:{e.data['kind']}" for e in events]


async def test_a_simple_task(db: str | None) -> None:
    async with swarm_of([cards], db) as swarm:
        events = await collect(swarm, "my card is lost", session="s1")
    assert kinds(events) == ["queued", "routed", "started", "span:tool", "span:agent", "done"]
    root = events[0].task_id
    assert {e.task_id for e in events} == {root} and all(e.parent_id is None for e in events)
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    queued, routed, started, tool, agent_span, done = (e.data for e in events)
    assert queued == {"text": "my card is lost", "parent_id": None, "agent": None}
    assert routed["agent"] == "cards" and routed["status"] == "routed"
    assert routed["confidence"] == 1.0 and routed["candidates"] == [["cards", 1.0]]
    assert routed["rule"] == "" and routed["reason"] == "cards (1.00)"
    assert started == {"agent": "cards", "attempt": 1}
    assert (tool["name"], tool["status"], tool["error"]) == ("lookup", "ok", None)
    assert tool["parent_id"] == agent_span["id"] and agent_span["name"] == "cards"
    assert tool["duration_ms"] >= 0
    assert done == {"status": "done", "agent": "cards", "output": "card 4821", "error": None}
    assert not swarm.events.active  # the stream's subscription ended with the task


async def test_span_events_are_the_spans_the_store_keeps(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    async with swarm_of([cards], url) as swarm:
        events = await collect(swarm, "card please")
        assert swarm.store is not None
        await swarm.store.flush()
        stored = swarm.store.spans(task_id=events[0].task_id)
    got = {e.data["id"]: (e.data["kind"], e.data["name"]) for e in events if e.kind == "span"}
    assert got == {s["id"]: (s["kind"], s["name"]) for s in stored}


async def test_a_delegating_task_streams_its_childs_events_in_its_tree(db: str | None) -> None:
    @agent
    async def planner(task, ctx):
        child = await ctx.delegate("card 7", agent="cards")
        return f"planned: {child.output}"

    async with swarm_of([planner, cards], db) as swarm:
        events = await collect(swarm, "plan my week")
    root = events[0].task_id
    child = next(e.data["child_id"] for e in events if e.kind == "delegated")
    tagged = [
        (k, "root" if e.task_id == root else "child")
        for k, e in zip(kinds(events), events, strict=True)
    ]
    assert tagged == [
        ("queued", "root"),
        ("routed", "root"),
        ("started", "root"),
        ("delegated", "root"),
        ("queued", "child"),
        ("routed", "child"),
        ("started", "child"),
        ("span:tool", "child"),
        ("span:agent", "child"),
        ("done", "child"),
        ("span:delegate", "root"),
        ("span:agent", "root"),
        ("done", "root"),
    ]
    assert {e.task_id for e in events} == {root, child}
    assert all(e.parent_id == root for e in events if e.task_id == child)
    delegated = next(e.data for e in events if e.kind == "delegated")
    assert delegated == {"child_id": child, "text": "card 7", "agent": "cards"}
    child_queued = next(e.data for e in events if e.kind == "queued" and e.task_id == child)
    assert child_queued == {"text": "card 7", "parent_id": root, "agent": "cards"}
    assert next(e.data for e in events if e.kind == "routed" and e.task_id == child)["status"] == (
        "forced"
    )
    assert events[-1].data["output"] == "planned: card 4821"
    json.dumps([e.as_dict() for e in events])  # what `swarm serve` sends, as it is


async def test_a_handoff(db: str | None) -> None:
    class Front(Agent):
        name = "front"
        description = "The front desk"

        async def run(self, task, ctx):
            return Handoff("cards", reason="it is about a card")

    async with swarm_of([Front(), cards], db) as swarm:
        events = await collect(swarm, "hand me over")
    assert kinds(events) == [
        "queued", "routed", "started", "span:agent", "handoff",
        "started", "span:tool", "span:agent", "done",
    ]  # fmt: skip
    assert [e.data for e in events if e.kind == "started"] == [
        {"agent": "front", "attempt": 1},
        {"agent": "cards", "attempt": 1},
    ]
    handoff = next(e.data for e in events if e.kind == "handoff")
    assert handoff == {"from": "front", "to": "cards", "reason": "it is about a card"}
    assert events[-1].data["agent"] == "cards" and events[-1].data["status"] == "done"


async def test_a_retry_starts_the_agent_again(db: str | None) -> None:
    calls = []

    @agent(retries=2)
    async def flaky(task, ctx):
        calls.append(ctx.attempt)
        if len(calls) == 1:
            raise Retryable("upstream hiccup")
        return "fine"

    retry = RetryPolicy(base=0.001, jitter=False)
    async with swarm_of([flaky], db, retry=retry) as swarm:
        events = await collect(swarm, "flaky call")
    assert kinds(events) == [
        "queued", "routed", "started", "span:agent", "started", "span:agent", "done",
    ]  # fmt: skip
    starts = [e.data["attempt"] for e in events if e.kind == "started"]
    assert starts == calls == [1, 2]
    first, second = (e.data for e in events if e.kind == "span")
    assert first["status"] == "error" and "upstream hiccup" in first["error"]
    assert second["status"] == "ok"
    assert events[-1].data["status"] == "done" and events[-1].data["output"] == "fine"


async def test_a_failure(db: str | None) -> None:
    @agent
    async def boom(task, ctx):
        raise ValueError("the ledger is closed")

    async with swarm_of([boom], db) as swarm:
        events = await collect(swarm, "boom")
    assert kinds(events) == ["queued", "routed", "started", "span:agent", "done"]
    assert events[3].data["status"] == "error"
    done = events[-1].data
    assert done["status"] == "failed" and done["output"] is None
    assert done["error"] == "ValueError: the ledger is closed" and done["agent"] == "boom"


async def test_a_cancellation_while_running(db: str | None) -> None:
    @agent(timeout=None)
    async def waiter(task, ctx):
        await asyncio.Event().wait()

    async with swarm_of([waiter], db) as swarm:
        seen = []
        async with aclosing(swarm.stream("wait forever")) as events:
            async for event in events:
                seen.append(event)
                if event.kind == "started":
                    assert swarm.cancel(event.task_id)
    assert kinds(seen) == ["queued", "routed", "started", "span:agent", "done"]
    assert seen[3].data["status"] == "cancelled"
    assert seen[-1].data["status"] == "cancelled"


async def test_cancelling_a_parent_ends_its_childs_stream_too(db: str | None) -> None:
    @agent(timeout=None)
    async def waiter(task, ctx):
        await asyncio.Event().wait()

    @agent(timeout=None)
    async def planner(task, ctx):
        await ctx.delegate("wait for me", agent="waiter")

    async with swarm_of([planner, waiter], db) as swarm:
        seen = []
        async with aclosing(swarm.stream("plan a wait")) as events:
            async for event in events:
                seen.append(event)
                if event.kind == "started" and event.data["agent"] == "waiter":
                    swarm.cancel(seen[0].task_id)
    done = {e.task_id: e.data["status"] for e in seen if e.kind == "done"}
    assert list(done.values()) == ["cancelled", "cancelled"]  # the child's, then the root's
    assert seen[-1].task_id == seen[0].task_id


async def test_a_rejected_task_is_routed_then_done(db: str | None) -> None:
    async with swarm_of([cards], db) as swarm:
        events = await collect(swarm, "what is the meaning of life")
    assert kinds(events) == ["queued", "routed", "done"]
    routed, done = events[1].data, events[2].data
    assert routed["agent"] is None and routed["status"] == "out_of_scope"
    assert done["status"] == TaskStatus.REJECTED.value and done["agent"] is None
    assert done["error"] == routed["reason"]


async def test_a_forced_agent_and_task_fields_reach_the_task() -> None:
    async with swarm_of([cards, echo]) as swarm:
        events = await collect(swarm, "anything", agent="echo", payload={"k": 1}, timeout=30)
    assert events[0].data["agent"] == "echo"
    assert events[1].data["status"] == "forced"
    assert events[-1].data["output"] == "ANYTHING"


async def test_the_bus_carries_every_task_and_a_stream_only_its_own() -> None:
    async with swarm_of([cards, echo], router=FakeRouter(default="echo")) as swarm:
        async with swarm.events.subscribe() as everything:
            other = await swarm.submit("another")
            mine = await collect(swarm, "mine")
            await other
            everything.close()
            seen = {e.task_id async for e in everything}
    assert {e.task_id for e in mine} == {mine[0].task_id}
    assert seen == {mine[0].task_id, other.id}


async def test_a_consumer_that_stops_early_leaves_the_task_running() -> None:
    release = asyncio.Event()
    finished = []

    @agent
    async def slow(task, ctx):
        await release.wait()
        finished.append(task.id)
        return "finished anyway"

    async with swarm_of([slow], router=FakeRouter(default="slow")) as swarm:
        async with aclosing(swarm.stream("take your time")) as events:
            async for event in events:
                if event.kind == "started":
                    break
        assert not swarm.events.active  # its subscription closed with the stream
        release.set()
        await swarm.join()
    assert finished == [event.task_id]


async def test_a_slow_subscriber_never_holds_up_the_scheduler() -> None:
    async with swarm_of([echo], router=FakeRouter(default="echo")) as swarm:
        stalled = swarm.events.subscribe(max_buffer=10)  # never read
        results = await swarm.run_many([f"t{i}" for i in range(300)])
        assert all(r.status is TaskStatus.DONE for r in results)
        # Each task: queued, routed, started, span, done; only the last 10 are kept.
        assert stalled.dropped == 300 * 5 - 10
        kept = []
        stalled.close()
        async for event in stalled:
            kept.append(event)
        assert len(kept) == 10 and kept[-1].kind == "done"
        # A stream opened now still sees its whole task.
        events = await collect(swarm, "after the flood")
        assert kinds(events) == ["queued", "routed", "started", "span:agent", "done"]


async def test_nobody_listening_builds_no_event(
    db: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    emit_task = EventBus.emit_task

    def counting(self: EventBus, kind: str, task: Any, data: dict[str, Any]) -> None:
        built.append(kind)
        emit_task(self, kind, task, data)

    monkeypatch.setattr(EventBus, "emit_task", counting)

    @agent
    async def planner(task, ctx):
        return (await ctx.delegate("card 7", agent="cards")).output

    llm = ScriptedLLM(["It will rain."] * 2)
    async with swarm_of([planner, cards, Teller()], db, llm=llm) as swarm:
        for text in ("plan it", "card lost", "meaning of life"):
            assert (await swarm.run(text)).status is not TaskStatus.FAILED
        assert (await swarm.run("weather?", agent="teller")).output == "It will rain."
        assert built == []  # every step checks `events.active` before building anything
        events = await collect(swarm, "weather?", agent="teller")
    assert built == [e.kind for e in events] and "token" in built
    assert events[0].seq == 1  # nothing was numbered before anyone listened


async def test_a_streaming_llm_agent_publishes_its_tokens(db: str | None) -> None:
    llm = ScriptedLLM(["It will rain in Oslo today."])
    router = FakeRouter(default="teller")
    async with swarm_of([Teller()], db, router=router, llm=llm) as swarm:
        events = await collect(swarm, "weather?")
    assert kinds(events) == [
        "queued", "routed", "started",
        "token", "token", "token", "token", "token", "token",
        "span:llm", "span:agent", "done",
    ]  # fmt: skip
    tokens = [e.data["text"] for e in events if e.kind == "token"]
    assert tokens == ["It", " will", " rain", " in", " Oslo", " today."]
    assert "".join(tokens) == events[-1].data["output"] == "It will rain in Oslo today."


async def test_an_llm_agent_that_does_not_stream_publishes_no_tokens() -> None:
    class Plain(Teller):
        name = "plain"
        stream = False

    llm = ScriptedLLM(["It will rain."])
    async with swarm_of([Plain()], router=FakeRouter(default="plain"), llm=llm) as swarm:
        events = await collect(swarm, "weather?")
    assert kinds(events) == ["queued", "routed", "started", "span:llm", "span:agent", "done"]
    assert events[-1].data["output"] == "It will rain."


class SecretLLM(ScriptedLLM):
    secrets = ("sk-live-4821 zz",)  # split over two word chunks by the scripted stream


async def test_token_events_never_carry_the_backends_secrets() -> None:
    llm = SecretLLM(["the key is sk-live-4821 zz ok"])
    async with swarm_of([Teller()], router=FakeRouter(default="teller"), llm=llm) as swarm:
        events = await collect(swarm, "leak it")
    text = "".join(e.data["text"] for e in events if e.kind == "token")
    assert "sk-live-4821" not in text and text.startswith("the key is ") and text.endswith(" ok")


async def test_stream_needs_a_started_swarm() -> None:
    from swarm import ConfigError

    swarm = Swarm([echo], router=FakeRouter(default="echo"), db=None)
    with pytest.raises(ConfigError, match="not started"):
        await collect(swarm, "too early")


async def test_a_store_is_unchanged_by_listening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    async with swarm_of([cards], url) as swarm:
        watched = [e async for e in swarm.stream("card one")]
        unwatched = await swarm.run("card two")
    with TraceStore(url) as store:
        a = store.spans(task_id=watched[0].task_id)
        b = store.spans(task_id=unwatched.task_id)
    assert [(s["kind"], s["name"]) for s in a] == [(s["kind"], s["name"]) for s in b]


async def test_a_task_that_waits_for_a_person(tmp_path: Path) -> None:
    @agent
    async def refunds(task, ctx):
        return "refunded" if await ctx.approve("refund 120.00?") else "kept"

    url = f"sqlite:///{tmp_path / 'events.db'}"
    router = FakeRouter(default="refunds")
    async with swarm_of([refunds], url, router=router) as swarm:
        seen = []
        async with aclosing(swarm.stream("refund me")) as events:
            async for event in events:
                seen.append(event)
                if event.kind == "waiting":
                    await swarm.approve(event.data["approval_id"], True, by="ana")
    assert kinds(seen) == [
        "queued", "routed", "started", "waiting", "approved",
        "span:approval", "span:agent", "done",
    ]  # fmt: skip
    waiting, approved = seen[3].data, seen[4].data
    assert waiting["question"] == "refund 120.00?"
    assert approved["approval_id"] == waiting["approval_id"] and approved["by"] == "ana"
    assert seen[-1].data["output"] == "refunded"
