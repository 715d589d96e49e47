"""A task's event stream opened late: its history from the trace store comes first (replayed), then
the live events, none twice: a task waiting for approval, a task that delegated to one that waits,
and the overlap of history and live events (a step published after subscribing, before the read)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx

from swarm import Swarm
from swarm.agents import AgentRegistry, agent
from swarm.context import Context
from swarm.events import Event, EventBus
from swarm.models import Task
from swarm.serve.history import event_key, replay_then_live, task_history
from swarm.testing import FakeRouter
from tests.serve.conftest import MakeServer, sse_events, wait_done
from tests.serve.test_events_and_approvals import refunds


@agent(name="desk", description="Hands refunds to the refunds agent.")
async def desk(task: Task, ctx: Context) -> dict[str, Any]:
    result = await ctx.delegate("refund 120.00 to card 4821", agent="refunds")
    return {"child": result.output}


ROUTER = {"escalate": "desk", "refund": "refunds"}
QUESTION = "refund 120.00 to card ending 4821?"  # `refunds` asks it; its wait is a span so named

Stream = Iterator[tuple[str, dict[str, Any], str]]


def waiting_approval(client: httpx.Client, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not (rows := client.get("/v1/approvals").json()["approvals"]):
        assert time.monotonic() < deadline, "no approval asked"
        time.sleep(0.02)
    assert len(rows) == 1
    return rows[0]  # type: ignore[no-any-return]


def until(stream: Stream, kind: str) -> list[tuple[str, dict[str, Any], str]]:
    """The events of `stream` up to and including the first of `kind`."""
    got = []
    for event in stream:
        got.append(event)
        if event[0] == kind:
            return got
    raise AssertionError(f"the stream ended without {kind!r}: {[k for k, _, _ in got]}")


def steps_of(events: list[tuple[str, dict[str, Any], str]]) -> list[tuple[str, Any]]:
    return [(k, e["data"].get("name")) for k, e, _ in events]


def test_a_late_stream_learns_what_waits(make_server: MakeServer, registry: AgentRegistry) -> None:
    registry.register(refunds)
    server = make_server(router=FakeRouter(ROUTER))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        task_id = client.post("/v1/tasks", json={"text": "refund my 120.00"}).json()["id"]
        approval = waiting_approval(client)  # it waits: only then does the stream open
        with client.stream("GET", f"/v1/tasks/{task_id}/events") as response:
            stream = sse_events(response)
            history = until(stream, "waiting")
            assert steps_of(history) == [
                ("queued", None),
                ("routed", None),
                ("started", None),
                ("span", "look_up_payment"),
                ("waiting", None),
            ]
            assert all(e["replayed"] and i == "" for _, e, i in history)
            waiting = history[-1][1]["data"]
            assert waiting["approval_id"] == approval["id"] and waiting["agent"] == "refunds"
            assert waiting["question"] == QUESTION
            assert waiting["details"] == {"amount": "120.00", "card": "4821"}

            client.post(f"/v1/approvals/{approval['id']}", json={"approve": True})
            rest = list(stream)
        assert steps_of(rest) == [
            ("approved", None),
            ("span", QUESTION),
            ("span", "refunds"),
            ("done", None),
        ]
        assert not any(e["replayed"] for _, e, _ in rest) and all(i for _, _, i in rest)
        assert rest[-1][1]["data"]["output"] == {"refunded": True}

        # Once it finished, its stream is the whole story, decision included.
        with client.stream("GET", f"/v1/tasks/{task_id}/events") as response:
            again = [(k, e["data"].get("name")) for k, e, _ in sse_events(response)]
        assert again == steps_of(history) + steps_of(rest)


def test_a_late_stream_of_a_delegating_task_shows_its_child(
    make_server: MakeServer, registry: AgentRegistry
) -> None:
    registry.register(refunds)
    registry.register(desk)
    server = make_server(router=FakeRouter(ROUTER))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        root = client.post("/v1/tasks", json={"text": "escalate this refund"}).json()["id"]
        approval = waiting_approval(client)  # the child asked
        child = approval["task_id"]
        assert child != root
        with client.stream("GET", f"/v1/tasks/{root}/events") as response:
            stream = sse_events(response)
            history = until(stream, "waiting")
            client.post(f"/v1/approvals/{approval['id']}", json={"approve": True})
            rest = list(stream)
        who = {root: "root", child: "child"}
        seen = [(who[e["task_id"]], k, e["data"].get("name")) for k, e, _ in history]
        assert seen == [
            ("root", "queued", None),
            ("root", "routed", None),
            ("root", "started", None),
            ("root", "delegated", None),
            ("child", "queued", None),
            ("child", "routed", None),
            ("child", "started", None),
            ("child", "span", "look_up_payment"),
            ("child", "waiting", None),
        ]
        assert history[3][1]["data"]["child_id"] == child
        assert all(e["parent_id"] == root for _, e, _ in history[4:])
        assert history[5][1]["data"]["status"] == "forced"
        # The live rest: the child's approval and end, then the root's.
        seen = [(who[e["task_id"]], k, e["data"].get("name")) for k, e, _ in rest]
        assert seen == [
            ("child", "approved", None),
            ("child", "span", QUESTION),  # the wait for the decision
            ("child", "span", "refunds"),
            ("child", "done", None),
            ("root", "span", "refunds"),  # the root's delegation
            ("root", "span", "desk"),
            ("root", "done", None),
        ]
        assert rest[-1][1]["data"]["output"] == {"child": {"refunded": True}}
        assert wait_done(client, root)["status"] == "done"

        with client.stream("GET", f"/v1/tasks/{root}/events") as response:
            story = list(sse_events(response))
        assert [(k, e["task_id"]) for k, e, _ in story] == [
            (k, e["task_id"]) for k, e, _ in history + rest
        ]
        assert all(e["replayed"] for _, e, _ in story)


async def test_history_and_live_overlap_without_repeats(db_url: str) -> None:
    """Subscribed before the task was submitted, the live buffer holds every step the history
    read later holds too: each is sent once, in order, then the live rest."""
    async with Swarm(
        AgentRegistry([refunds]), router=FakeRouter(default="refunds"), db=db_url
    ) as swarm:
        bus = swarm.scheduler.events
        sub = bus.subscribe()  # before the task: every step of it comes live too
        handle = swarm.scheduler.submit_nowait("refund my 120.00")
        for _ in range(2000):
            if waiting := await swarm.approvals("waiting"):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the `waiting` event is published just after the row
        assert swarm.store is not None
        await swarm.store.flush()
        tree, history = await asyncio.to_thread(task_history, swarm.store, handle.id)
        assert tree["status"] == "waiting" and [e.kind for e in history][-1] == "waiting"

        got: list[Event] = []

        async def collect() -> None:
            async for event in replay_then_live(history, sub):
                got.append(event)
                if event.kind == "done":
                    return

        collecting = asyncio.create_task(collect())
        await asyncio.sleep(0.05)
        assert [e.kind for e in got] == [e.kind for e in history]  # the live copies were skipped
        await swarm.approve(waiting[0]["id"])
        await asyncio.wait_for(collecting, 10)
        sub.close()

    steps = [(e.kind, e.data.get("name"), e.replayed) for e in got]
    assert steps == [
        ("queued", None, True),
        ("routed", None, True),
        ("started", None, True),
        ("span", "look_up_payment", True),
        ("waiting", None, True),
        ("approved", None, False),
        ("span", QUESTION, False),
        ("span", "refunds", False),
        ("done", None, False),
    ]
    # The subscription received all nine live (seq 1..9): the first five were skipped as sent.
    assert [e.seq for e in got if not e.replayed] == [6, 7, 8, 9]
    keys = [event_key(e) for e in got]
    assert len(keys) == len(set(keys))


async def test_a_subscription_follows_children_it_learned_from_the_store() -> None:
    """A child delegated before the stream subscribed is known only from the store: followed,
    the events of its own children (whose parent is the child, not the root) reach the stream."""
    bus = EventBus()
    sub = bus.subscribe("root")
    bus.emit("span", "grandchild", {"id": "s1"}, parent_id="child")
    sub.follow(["child"])
    bus.emit("span", "grandchild", {"id": "s2"}, parent_id="child")
    bus.emit("span", "other", {"id": "s3"}, parent_id="elsewhere")
    sub.close()  # what it received is still read out
    assert [e.data["id"] async for e in sub] == ["s2"]
