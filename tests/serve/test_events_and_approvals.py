"""Server-sent events through a real server: a live task's stream until `done`, a finished task's
stored history, the stream of all tasks; and a refund that waits for a person who approves or denies
it through the API."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from swarm import Swarm
from swarm.agents import AgentRegistry, agent
from swarm.context import Context
from swarm.models import Task
from swarm.testing import FakeRouter
from swarm.testing.serve import LiveServer
from tests.serve.conftest import MakeServer, sse_events, wait_done


def test_a_live_task_streams_until_done(client: httpx.Client) -> None:
    task_id = client.post("/v1/tasks", json={"text": "I lost my card ending 4821"}).json()["id"]
    with client.stream("GET", f"/v1/tasks/{task_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response))  # ends by itself after `done`
    kinds = [kind for kind, _, _ in events]
    assert kinds[-1] == "done"
    done = events[-1][1]
    assert done["task_id"] == task_id and done["data"]["status"] == "done"
    assert done["data"]["output"]["reply"]
    # Wherever it was when the stream opened, its whole life came: the history first (replayed,
    # no id), then the live events in order; nothing twice.
    assert kinds[:3] == ["queued", "routed", "started"] and kinds.count("done") == 1
    flags = [e["replayed"] for _, e, _ in events]
    assert flags == sorted(flags, reverse=True)
    live = [int(ident) for _, e, ident in events if not e["replayed"]]
    assert live == sorted(live) and all(ident == "" for _, e, ident in events if e["replayed"])
    spans = [e["data"]["id"] for k, e, _ in events if k == "span"]
    assert len(spans) == len(set(spans)) >= 2  # the tool's and the agent's


def test_a_finished_task_sends_its_history_and_ends(client: httpx.Client) -> None:
    task_id = client.post("/v1/tasks", json={"text": "I lost my card ending 4821"}).json()["id"]
    task = wait_done(client, task_id)
    with client.stream("GET", f"/v1/tasks/{task_id[-8:]}/events") as response:
        events = list(sse_events(response))  # ends: nothing more will happen
    steps = [(kind, e["data"].get("name")) for kind, e, _ in events]
    assert steps == [
        ("queued", None),
        ("routed", None),
        ("started", None),
        ("span", "block_card"),
        ("span", "security"),
        ("done", None),
    ]
    assert all(e["replayed"] and e["task_id"] == task_id and i == "" for _, e, i in events)
    queued, routed, started = (e["data"] for _, e, _ in events[:3])
    assert queued == {"text": "I lost my card ending 4821", "parent_id": None, "agent": None}
    assert routed["agent"] == "security" and routed["candidates"][0][0] == "security"
    assert started == {"agent": "security", "attempt": 1}
    done = events[-1][1]
    assert done["data"]["status"] == task["status"] == "done"
    assert done["data"]["output"] == task["output"] and done["at"] == task["finished_at"]
    trace = client.get(f"/v1/traces/{task_id}").json()
    assert [e["data"]["id"] for k, e, _ in events if k == "span"] == [
        s["id"] for s in sorted(trace["spans"], key=lambda s: s["ended_at"])
    ]


def test_a_rejected_task_sends_its_decision_and_done(client: httpx.Client) -> None:
    task_id = client.post("/v1/tasks", json={"text": "what are your fees"}).json()["id"]
    task = wait_done(client, task_id)
    with client.stream("GET", f"/v1/tasks/{task_id}/events") as response:
        events = list(sse_events(response))
    assert [k for k, _, _ in events] == ["queued", "routed", "done"]
    routed = events[1][1]["data"]
    assert routed["status"] == "ambiguous" and routed["reason"] == task["error"]
    assert events[-1][1]["data"]["status"] == task["status"] == "rejected"


@pytest.fixture
def slow_swarm(db_url: str) -> Swarm:
    """One agent that waits until the test lets it go (`release`), so a stream opens first."""
    release = threading.Event()

    @agent(name="slow", description="Waits for the test.")
    async def slow(task: Task, ctx: Context) -> dict[str, Any]:
        import asyncio

        async with ctx.span("tool", "wait"):
            await asyncio.to_thread(release.wait, 30)
        return {"reply": f"done: {task.text}"}

    swarm = Swarm(AgentRegistry([slow]), router=FakeRouter(default="slow"), db=db_url)
    swarm.release = release  # type: ignore[attr-defined]
    return swarm


def test_every_step_of_a_running_task_arrives_in_order(slow_swarm: Swarm) -> None:
    with LiveServer(slow_swarm) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        task_id = client.post("/v1/tasks", json={"text": "take your time"}).json()["id"]
        with client.stream("GET", f"/v1/tasks/{task_id}/events") as response:
            assert response.status_code == 200  # subscribed before the answer started
            slow_swarm.release.set()  # type: ignore[attr-defined]
            events = list(sse_events(response))
    # The stream opened while the task was queued, routed or running (it waits in its span):
    # its history, then every step from then on, in order, none twice.
    steps = [(kind, data["data"].get("name")) for kind, data, _ in events]
    life = [("queued", None), ("routed", None), ("started", None)]
    life += [("span", "wait"), ("span", "slow"), ("done", None)]
    assert steps == life
    span = events[steps.index(("span", "wait"))][1]
    assert span["task_id"] == task_id and span["data"]["duration_ms"] >= 0
    assert events[-1][1]["data"]["output"] == {"reply": "done: take your time"}


def test_the_stream_of_all_tasks(client: httpx.Client) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as c:
            with c.stream("GET", "/v1/events") as response:
                ready.set()  # the answer started: the subscription is made
                for kind, data, _ in sse_events(response):
                    seen.append((kind, data))
                    if sum(k == "done" for k, _ in seen) == 2:
                        return

    listener = threading.Thread(target=listen)
    listener.start()
    assert ready.wait(10)
    ids = [
        client.post("/v1/tasks", json={"text": t}).json()["id"]
        for t in ("block my card 4821", "what are your fees")
    ]
    listener.join(30)
    assert not listener.is_alive()
    assert {d["task_id"] for k, d in seen if k == "done"} == set(ids)


# ---- approvals -------------------------------------------------------------------------------


@agent(name="refunds", description="Refunds a card payment once a person approves it.")
async def refunds(task: Task, ctx: Context) -> dict[str, Any]:
    async with ctx.span("tool", "look_up_payment"):
        pass
    approved = await ctx.approve(
        "refund 120.00 to card ending 4821?", details={"amount": "120.00", "card": "4821"}
    )
    return {"refunded": approved}


def test_approve_a_waiting_refund_through_the_api(
    make_server: MakeServer, registry: AgentRegistry
) -> None:
    registry.register(refunds)
    server = make_server(router=FakeRouter({"refund": "refunds"}))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        task_id = client.post("/v1/tasks", json={"text": "please refund my 120.00"}).json()["id"]
        with client.stream("GET", f"/v1/tasks/{task_id}/events") as response:
            stream = sse_events(response)
            waiting = next(e for k, e, _ in stream if k == "waiting")
            approval_id = waiting["data"]["approval_id"]
            assert client.get(f"/v1/tasks/{task_id}").json()["status"] == "waiting"
            listed = client.get("/v1/approvals").json()["approvals"]
            assert [a["id"] for a in listed] == [approval_id]
            assert listed[0]["question"] == "refund 120.00 to card ending 4821?"
            assert listed[0]["details"] == {"amount": "120.00", "card": "4821"}

            decided = client.post(
                f"/v1/approvals/{approval_id[-8:]}", json={"approve": True, "note": "ok"}
            )
            assert decided.status_code == 200, decided.text
            row = decided.json()
            assert row["status"] == "approved" and row["decided_by"] == "api"
            assert row["note"] == "ok"
            rest = [k for k, _, _ in stream]
        assert "approved" in rest and rest[-1] == "done"
        assert wait_done(client, task_id)["output"] == {"refunded": True}

        again = client.post(f"/v1/approvals/{approval_id}", json={"approve": False})
        assert again.status_code == 409 and "approved" in again.json()["detail"]
        assert client.get("/v1/approvals").json()["approvals"] == []
        assert len(client.get("/v1/approvals", params={"status": "all"}).json()["approvals"]) == 1


def test_deny_a_refund(make_server: MakeServer, registry: AgentRegistry) -> None:
    registry.register(refunds)
    server = make_server(router=FakeRouter({"refund": "refunds"}), token="s3cret")
    headers = {"Authorization": "Bearer s3cret"}
    with httpx.Client(base_url=server.url, timeout=30, headers=headers) as client:
        task_id = client.post("/v1/tasks", json={"text": "refund it"}).json()["id"]
        deadline = time.monotonic() + 20
        while not (waiting := client.get("/v1/approvals").json()["approvals"]):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        denied = client.post(f"/v1/approvals/{waiting[0]['id']}", json={"approve": False})
        assert denied.json()["status"] == "denied"
        assert wait_done(client, task_id)["output"] == {"refunded": False}


def test_approval_errors(client: httpx.Client) -> None:
    missing = client.post("/v1/approvals/nosuchapproval", json={"approve": True})
    assert missing.status_code == 404 and "nosuchapproval" in missing.json()["detail"]
    no_field = client.post("/v1/approvals/x", json={"note": "hm"})
    assert no_field.status_code == 422 and no_field.json()["errors"][0]["field"] == "approve"
    status = client.get("/v1/approvals", params={"status": "pending"})
    assert status.status_code == 422 and status.json()["errors"][0]["field"] == "status"
