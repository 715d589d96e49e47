"""RayExecutor on a real two-node Ray cluster (started once per session by `ray_cluster`):
bodies run on the node they are pinned to, time out and cancel there, delegate back to the
scheduler, send their spans to the store, and survive the death of their node. The test that
kills the second node runs last."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")  # the `ray` extra

import remote_agents as ra

from swarm import Swarm, TaskStatus
from swarm.executors import RayExecutor
from swarm.testing import FakeRouter
from swarm.trace import TraceStore
from swarm_examples.bank.db import Bank

pytestmark = pytest.mark.slow

AGENTS = [
    ra.where,
    ra.sleepy,
    ra.child,
    ra.parent,
    ra.passer,
    ra.flaky,
    ra.top_up,
    ra.asks,
    ra.talker,
]


ON_SECOND_NODE = {"resources": {"node2": 0.01}}
"""Actors go to the second node (its custom resource); those that replace a lost one anywhere."""


def swarm_on(cluster: Any, store: TraceStore, llm: Any = None, **executor: Any) -> Swarm:
    options = {"actor_options": ON_SECOND_NODE, "replacement_options": {}, **executor}
    return Swarm(AGENTS, router=FakeRouter(), db=store, llm=llm, executor=RayExecutor(**options))


async def warmed(swarm: Swarm, *agents: Any) -> dict[str, list[str]]:
    """Start the agents' actors before the clock of a 1 s timeout runs; where they run."""
    executor = swarm.scheduler.executor
    assert isinstance(executor, RayExecutor)
    return await executor.warm(agents)


async def test_a_body_runs_on_the_node_it_is_pinned_to(ray_connected: Any, store) -> None:
    async with swarm_on(ray_connected, store) as swarm:
        result = await swarm.run("where am I", agent="where")
    assert result.ok, result.error
    second = ray_connected.nodes[1].node_id
    assert result.output["node"] == second
    import os

    assert result.output["pid"] != os.getpid()
    (agent_span,) = store.spans(task_id=result.task_id, kind="agent")
    assert agent_span["attributes"]["ray_node"] == second


async def test_spans_recorded_on_the_worker_reach_the_store(ray_connected: Any, store) -> None:
    async with swarm_on(ray_connected, store) as swarm:
        result = await swarm.run("where am I", agent="where")
    spans = {s["name"]: s for s in store.spans(task_id=result.task_id)}
    step, tool, agent_span = spans["remote-step"], spans["lookup"], spans["where"]
    assert step["parent_id"] == agent_span["id"]  # hung from the driver's agent span
    assert tool["parent_id"] == step["id"]
    assert tool["attributes"]["arguments"] == {"customer": "C001"}
    assert tool["attributes"]["output"]["pid"] == str(result.output["pid"])
    assert step["attributes"]["found"]["customer"] == "C001"


async def test_a_timeout_cancels_the_remote_body(ray_connected: Any, store, tmp_path) -> None:
    marker = tmp_path / "cancelled"
    async with swarm_on(ray_connected, store) as swarm:
        await warmed(swarm, ra.sleepy)
        result = await swarm.run("nap", agent="sleepy", payload={"marker": str(marker)})
    assert result.status is TaskStatus.FAILED
    assert result.error == "timed out after 1s"
    # The body saw its cancellation on the worker, on the second node, before the task ended.
    assert marker.read_text() == f"cancelled on {ray_connected.nodes[1].node_id}"
    (nap,) = [s for s in store.spans(task_id=result.task_id) if s["name"] == "nap"]
    assert nap["status"] == "cancelled"  # the cancelled body's spans came back too


async def test_cancel_reaches_the_remote_body(ray_connected: Any, store, tmp_path) -> None:
    import asyncio

    marker = tmp_path / "cancelled"
    async with swarm_on(ray_connected, store) as swarm:
        await warmed(swarm, ra.sleepy)
        handle = await swarm.submit("nap", agent="sleepy", payload={"marker": str(marker)})
        await asyncio.sleep(0.5)
        handle.cancel()
        result = await handle
    assert result.status is TaskStatus.CANCELLED
    assert marker.read_text().startswith("cancelled on")


async def test_delegation_and_handoff_from_a_remote_body(ray_connected: Any, store) -> None:
    async with swarm_on(ray_connected, store) as swarm:
        delegated = await swarm.run("family", agent="parent")
        handed = await swarm.run("pass it on", agent="passer")
    assert delegated.ok, delegated.error
    texts = [c["text"] for c in delegated.output["children"]]
    assert texts == ["first", "second"]
    assert all(c["parent"] == delegated.task_id for c in delegated.output["children"])
    children = store.children(delegated.task_id)
    assert sorted(c["text"] for c in children) == ["first", "second"]
    assert {c["status"] for c in children} == {"done"}
    delegate_spans = store.spans(task_id=delegated.task_id, kind="delegate")
    assert len(delegate_spans) == 2  # recorded on the worker, around the call to the driver
    assert handed.ok and handed.hops == ["passer", "child"]
    assert handed.output["text"] == "pass it on"


async def test_a_remote_body_asks_a_person_and_publishes(ray_connected: Any, store) -> None:
    """`ctx.approve` and `ctx.publish` from the worker reach the driver's scheduler and bus."""
    import asyncio

    async with swarm_on(ray_connected, store) as swarm:
        events = swarm.scheduler.events.subscribe()
        handle = await swarm.submit("refund please", agent="asks")
        for _ in range(300):
            rows = await swarm.approvals()
            if rows:
                break
            await asyncio.sleep(0.1)
        (row,) = rows
        assert (row["question"], row["details"], row["task_id"]) == (
            "refund 1.00?",
            {"amount": 1},
            handle.id,
        )
        await swarm.approve(row["id"], by="ops")
        result = await handle
        events.close()
        seen = [e async for e in events if e.task_id == handle.id]
    assert result.ok, result.error
    (progress,) = [e for e in seen if e.kind == "progress"]
    assert progress.data == {"step": "asking", "node": ray_connected.nodes[1].node_id}
    assert {"waiting", "approved"} <= {e.kind for e in seen}
    spans = [e.data["name"] for e in seen if e.kind == "span"]
    assert "refund 1.00?" in spans  # the worker's approval span, published when it came back
    assert result.output == {"approved": True, "node": ray_connected.nodes[1].node_id}
    kinds = [s["kind"] for s in store.spans(task_id=handle.id)]
    assert "approval" in kinds  # the approval span was recorded on the worker


async def test_the_llm_client_travels_and_its_spans_come_back(ray_connected: Any, store) -> None:
    from swarm.testing import ScriptedLLM

    async with swarm_on(ray_connected, store, llm=ScriptedLLM(["hello from the script"])) as swarm:
        result = await swarm.run("say hello", agent="talker")
    assert result.ok, result.error
    assert result.output == {
        "reply": "hello from the script",
        "node": ray_connected.nodes[1].node_id,
    }
    (llm_span,) = store.spans(task_id=result.task_id, kind="llm")
    (agent_span,) = store.spans(task_id=result.task_id, kind="agent")
    assert llm_span["parent_id"] == agent_span["id"]  # recorded on the worker, under the agent


async def test_retries_stay_the_schedulers(ray_connected: Any, store, tmp_path) -> None:
    tries = tmp_path / "tries"
    async with swarm_on(ray_connected, store) as swarm:
        result = await swarm.run("flaky", agent="flaky", payload={"tries": str(tries)})
    assert result.ok and result.output == 2
    assert result.attempts == 2
    (first,) = [s for s in store.spans(task_id=result.task_id, kind="agent") if s["status"] != "ok"]
    assert "Retryable: first try fails" in first["error"] or "first try fails" in first["error"]


@pytest.mark.parametrize("how", ["gcs", "client"])
def test_swarm_run_with_the_ray_executor(ray_connected: Any, tmp_path: Path, how: str) -> None:
    """`swarm run --executor ray:ADDRESS` (a driver of its own) and `ray://HOST:PORT` (Ray
    Client): a process of its own, connected to the cluster."""
    import json
    import os
    import subprocess
    import sys

    here = Path(__file__).resolve().parent  # not `from conftest import`: which conftest that is
    root = here.parents[1]  # depends on what pytest collected first

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    command = [
        str(Path(sys.executable).with_name("swarm")), "run", "where am I", "--agent", "where",
        "--agents", "remote_agents", "--db", db, "--json",
        "--executor",
        f"ray:{ray_connected.address}" if how == "gcs" else ray_connected.client_address,
    ]  # fmt: skip
    path = os.pathsep.join([str(here), str(root), str(root / "examples")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = json.loads(done.stdout.strip().splitlines()[-1])["results"]
    assert result["status"] == "done"
    assert result["output"]["node"] in {n.node_id for n in ray_connected.nodes}
    assert result["output"]["pid"] != os.getpid()
    with TraceStore(db) as store:
        (agent_span,) = store.spans(kind="agent")
        assert agent_span["attributes"]["ray_node"] == result["output"]["node"]
        assert {s["name"] for s in store.spans()} >= {"where", "remote-step", "lookup"}


async def test_an_agent_that_cannot_start_on_the_workers_fails_clearly(
    ray_connected: Any, store
) -> None:
    """Its actor cannot be made (here: a worker service that does not build): a ConfigError
    that says what a worker needs, at once, not a worker lost again and again."""
    executor = {"worker_services": {"bank": _no_bank}}
    async with swarm_on(ray_connected, store, **executor) as swarm:
        result = await swarm.run("where am I", agent="where")
    assert result.status is TaskStatus.FAILED
    assert result.attempts == 1
    error = result.error or ""
    assert error.startswith(
        "ConfigError: agent 'where' (remote_agents.where) could not start on Ray"
    )
    assert "PYTHONPATH" in error and "no bank on this node" in error
    assert store.spans(task_id=result.task_id, kind="executor") == []  # not counted as a loss


async def test_killing_the_second_node_loses_nothing_and_repeats_nothing(
    ray_connected: Any, store, tmp_path: Path
) -> None:
    """Runs last: the second node does not come back."""
    import asyncio

    bank_url = f"sqlite:///{tmp_path / 'bank.db'}"
    bank = Bank.create(bank_url)
    before = bank.accounts("C001")[0]["balance_cents"]
    ledger = tmp_path / "ledger"
    n = 12
    executor = {"worker_services": {"bank": _bank_factory(bank_url)}}
    async with swarm_on(ray_connected, store, **executor) as swarm:
        where = await warmed(swarm, ra.top_up)
        assert where == {"top_up": [ray_connected.nodes[1].node_id]}
        handles = [
            await swarm.submit(
                f"top up {i}", agent="top_up", payload={"ledger": str(ledger), "wait": 3}
            )
            for i in range(n)
        ]
        # Every body has done its top-up and waits on the second node: kill that node.
        for _ in range(300):
            if ledger.exists() and len(ledger.read_text().splitlines()) >= n:
                break
            await asyncio.sleep(0.1)
        lines = ledger.read_text().splitlines()
        assert len(lines) == n
        assert {line.split()[1] for line in lines} == {ray_connected.nodes[1].node_id}
        ray_connected.kill_node(1)
        results = [await h for h in handles]
    assert [r.status for r in results] == [TaskStatus.DONE] * n, [r.error for r in results]
    head = ray_connected.nodes[0].node_id
    assert {r.output["node"] for r in results} == {head}  # retried on the head
    assert all(r.output["repeated"] for r in results)  # the top-up had happened: not again
    assert all(r.attempts == 1 for r in results)  # the loss did not use up the agent's retries
    actions = bank.actions()
    assert sorted(a["task_id"] for a in actions) == sorted(r.task_id for r in results)
    assert bank.accounts("C001")[0]["balance_cents"] == before + 100 * n
    assert len(ledger.read_text().splitlines()) == 2 * n  # each body ran twice, applied once
    losses = store.spans(kind="executor")
    assert {s["task_id"] for s in losses} == {r.task_id for r in results}
    bank.close()


def _no_bank() -> Any:
    raise RuntimeError("no bank on this node")


def _bank_factory(url: str) -> Any:
    import functools

    return functools.partial(Bank, url)
