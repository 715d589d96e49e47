"""Agents on Ray against agents in process, on the same load: each task waits `io_ms` (simulated
I/O) and computes for `cpu_ms`. Starts its own Ray cluster on this machine (swarm.testing.ray:
`nodes` nodes of one CPU each, the agent's pool one actor per node). Last line: one JSON object.

    python benchmarks/scale_ray.py --nodes 1 --tasks 2000 [--io-ms 20 --cpu-ms 2]

`measure_ray(nodes, tasks, io_ms, cpu_ms)` is what benchmarks/scale.py calls. Its keys:
tasks_per_s, p50_ms, p95_ms (submit to result, all tasks submitted at once), lost (tasks without a
done result), twice (tasks whose body ran more than once), overhead_ms (the latency the Ray path
adds to one task, run one at a time: median Ray latency minus median local latency), the local
figures on the same load (local_tasks_per_s, local_p50_ms, local_p95_ms), and where the actors ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from swarm import Swarm, TaskStatus
from swarm.agents import FunctionAgent
from swarm.executors import RayExecutor
from swarm.testing import FakeRouter
from swarm.testing.ray import TemporaryRayCluster

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def load_agent(io_ms: float, cpu_ms: float, ledger: str, concurrency: int) -> FunctionAgent:
    """An agent that waits, computes, and appends its task id to `ledger` (one line per body)."""

    async def work(task: Any, ctx: Any) -> str:
        await asyncio.sleep(io_ms / 1000)
        end = time.perf_counter() + cpu_ms / 1000
        while time.perf_counter() < end:
            pass
        with open(ledger, "a") as f:
            f.write(task.id + "\n")
        return "ok"

    return FunctionAgent(
        work, name="work", description="load", max_concurrency=concurrency, timeout=120
    )


async def one_run(
    agent: FunctionAgent, tasks: int, sequential: int, db: str, executor: RayExecutor | None
) -> dict[str, Any]:
    """Latency of `sequential` tasks one at a time, then `tasks` submitted at once."""
    out: dict[str, Any] = {}
    async with Swarm(
        [agent], router=FakeRouter(default="work"), db=db, executor=executor, concurrency=512
    ) as swarm:
        if executor is not None:
            out["actors_on"] = (await executor.warm([agent]))["work"]
        for _ in range(20):  # warm up
            await swarm.run("warm up")
        one = []
        for _ in range(sequential):
            t = time.perf_counter()
            await swarm.run("one at a time")
            one.append((time.perf_counter() - t) * 1000)
        out["one_p50_ms"] = statistics.median(one)

        latencies: list[float] = []
        results = []

        async def timed(handle: Any, t0: float) -> None:
            results.append(await handle)
            latencies.append((time.perf_counter() - t0) * 1000)

        start = time.perf_counter()
        waits = []
        for _ in range(tasks):
            waits.append(timed(await swarm.submit("load"), time.perf_counter()))
        await asyncio.gather(*waits)
        elapsed = time.perf_counter() - start
    latencies.sort()
    out.update(
        tasks_per_s=tasks / elapsed,
        p50_ms=latencies[len(latencies) // 2],
        p95_ms=latencies[int(len(latencies) * 0.95)],
        lost=tasks - sum(r.status is TaskStatus.DONE for r in results),
        ids=[r.task_id for r in results],
    )
    return out


def measure_ray(
    nodes: int,
    tasks: int,
    io_ms: float,
    cpu_ms: float,
    *,
    sequential: int = 200,
    concurrency: int = 64,
) -> dict[str, Any]:
    """Run the load in process, then on a new `nodes`-node Ray cluster; see the module doc."""
    with tempfile.TemporaryDirectory(prefix="swarm-scale-ray-") as tmp:
        local_ledger, ray_ledger = f"{tmp}/local.ledger", f"{tmp}/ray.ledger"
        local = asyncio.run(
            one_run(
                load_agent(io_ms, cpu_ms, local_ledger, concurrency),
                tasks, sequential, f"sqlite:///{tmp}/local.db", None,
            )
        )  # fmt: skip
        with TemporaryRayCluster(nodes=nodes, path=[HERE, ROOT]) as cluster:
            executor = RayExecutor(cluster.address, replicas=nodes)
            remote = asyncio.run(
                one_run(
                    load_agent(io_ms, cpu_ms, ray_ledger, concurrency),
                    tasks, sequential, f"sqlite:///{tmp}/ray.db", executor,
                )
            )  # fmt: skip
            node_ids = [n.node_id for n in cluster.nodes]
        runs = Counter(Path(ray_ledger).read_text().split())
    load_ids = set(remote["ids"])
    return {
        "nodes": nodes,
        "tasks": tasks,
        "io_ms": io_ms,
        "cpu_ms": cpu_ms,
        "tasks_per_s": round(remote["tasks_per_s"], 1),
        "p50_ms": round(remote["p50_ms"], 2),
        "p95_ms": round(remote["p95_ms"], 2),
        "lost": remote["lost"] + sum(1 for i in load_ids if runs[i] == 0),
        "twice": sum(1 for i in load_ids if runs[i] > 1),
        "overhead_ms": round(remote["one_p50_ms"] - local["one_p50_ms"], 3),
        "one_at_a_time_p50_ms": round(remote["one_p50_ms"], 3),
        "local_one_at_a_time_p50_ms": round(local["one_p50_ms"], 3),
        "local_tasks_per_s": round(local["tasks_per_s"], 1),
        "local_p50_ms": round(local["p50_ms"], 2),
        "local_p95_ms": round(local["p95_ms"], 2),
        "local_lost": local["lost"],
        "actor_nodes": len(set(remote["actors_on"])),
        "cluster_nodes": len(node_ids),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--io-ms", type=float, default=20.0)
    parser.add_argument("--cpu-ms", type=float, default=2.0)
    parser.add_argument("--sequential", type=int, default=200, help="tasks one at a time")
    args = parser.parse_args(argv)
    figures = measure_ray(
        args.nodes, args.tasks, args.io_ms, args.cpu_ms, sequential=args.sequential
    )
    figures["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"
    figures["threads"] = os.environ.get("OMP_NUM_THREADS", "unset")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
