"""The event bus: tree subscriptions, the end of a stream, slow subscribers."""

from __future__ import annotations

import asyncio

from swarm.events import Event, EventBus


async def test_a_tree_subscription_gets_its_task_and_its_children_and_ends_after_done() -> None:
    bus = EventBus()
    sub = bus.subscribe("root")
    bus.emit("queued", "root", {"text": "hi"})
    bus.emit("queued", "other", {"text": "not mine"})
    bus.emit("queued", "child", {"text": "sub"}, parent_id="root")
    bus.emit("done", "child", {"status": "done"})
    bus.emit("queued", "grandchild", parent_id="child")
    bus.emit("done", "root", {"status": "done"})
    bus.emit("queued", "late", parent_id="root")  # after the end: not delivered
    got = [(e.kind, e.task_id) async for e in sub]
    assert got == [
        ("queued", "root"),
        ("queued", "child"),
        ("done", "child"),
        ("queued", "grandchild"),
        ("done", "root"),
    ]
    assert not bus.active


async def test_events_are_numbered_in_order_and_a_slow_subscriber_loses_its_oldest() -> None:
    bus = EventBus()
    everything = bus.subscribe(max_buffer=3)
    for i in range(5):
        bus.publish(Event("token", "t", {"text": str(i)}))
    everything.close()
    got = [e async for e in everything]
    assert [e.data["text"] for e in got] == ["2", "3", "4"]
    assert [e.seq for e in got] == [3, 4, 5]
    assert everything.dropped == 2


async def test_a_waiting_subscriber_wakes_on_publish() -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    nxt = asyncio.ensure_future(sub.__anext__())
    await asyncio.sleep(0)
    assert not nxt.done()
    bus.emit("started", "t", {"agent": "a", "attempt": 1})
    event = await asyncio.wait_for(nxt, 1)
    assert event.as_dict()["data"] == {"agent": "a", "attempt": 1}


def test_publishing_with_no_subscriber_costs_nothing_and_numbers_nothing() -> None:
    bus = EventBus()
    assert bus.publish(Event("done", "t")).seq == 0
