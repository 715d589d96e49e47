"""Agents on Ray against agents in process, on the same load: each task waits `io_ms` (simulated
I/O) and computes for `cpu_ms`. Starts its own Ray cluster on this machine (swarm.testing.ray:
`nodes` nodes of one CPU each, each agent one actor per node). Last line: one JSON object.

    python benchmarks/scale_ray.py --nodes 1 --tasks 2000 [--io-ms 20 --cpu-ms 2]

`measure_ray(nodes, tasks, io_ms, cpu_ms)` is what benchmarks/scale.py calls. Its keys:
tasks_per_s, p50_ms, p95_ms (submit to result, all tasks submitted at once), lost (tasks without a
done result), twice (tasks whose body ran more than once), overhead_ms (the latency the Ray path
adds to one task, run one at a time: median Ray latency minus median local latency, the two
alternating), overhead_noop_ms (the same for a body that does nothing), ray_floor_ms (Ray's own
round trip to an async actor, for scale), executor_noop_ms (`RayExecutor.run` of a no-op body
alone, without scheduler or store: against ray_floor_ms, what the executor's own path adds), the
local figures on the same load (local_tasks_per_s, local_p50_ms, local_p95_ms), and on how many
nodes the actors ran.
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

from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from swarm import Swarm, Task, TaskStatus
from swarm.agents import FunctionAgent
from swarm.clock import SystemClock
from swarm.context import Context
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
        # A 27-byte append: cheaper than a hop to a thread, and the same on both paths.
        with open(ledger, "a") as f:  # noqa: ASYNC230
            f.write(task.id + "\n")
        return "ok"

    return FunctionAgent(
        work, name="work", description="load", max_concurrency=concurrency, timeout=120
    )


async def load(swarm: Swarm, tasks: int) -> dict[str, Any]:
    """`tasks` submitted at once: rate, latency from submit to result, and the ids."""
    latencies: list[float] = []
    results = []

    async def timed(handle: Any, t0: float) -> None:
        results.append(await handle)
        latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    waits = [timed(await swarm.submit("load"), time.perf_counter()) for _ in range(tasks)]
    await asyncio.gather(*waits)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "tasks_per_s": tasks / elapsed,
        "p50_ms": latencies[len(latencies) // 2],
        "p95_ms": latencies[int(len(latencies) * 0.95)],
        "lost": tasks - sum(r.status is TaskStatus.DONE for r in results),
        "ids": [r.task_id for r in results],
    }


async def _noop(task: Any, ctx: Any) -> str:
    return "ok"


noop = FunctionAgent(_noop, name="noop", description="does nothing", max_concurrency=8)


class _Echo:
    async def echo(self, x: Any) -> Any:
        return x


async def ray_floor_ms(n: int) -> float:
    """Ray's own round trip: the median of `n` calls, one at a time, of an async actor method
    that returns its argument (what any Ray path pays, swarm or not)."""
    import ray

    echo = ray.remote(num_cpus=0)(_Echo).remote()
    await echo.echo.remote(0)
    times = []
    for i in range(n):
        t = time.perf_counter()
        await echo.echo.remote(i)
        times.append((time.perf_counter() - t) * 1000)
    ray.kill(echo)
    return statistics.median(times)


class _NoScheduler:
    async def delegate(self, parent: Task, child: Task) -> Any:
        raise AssertionError("the no-op body does not delegate")


async def executor_noop_ms(executor: RayExecutor, n: int) -> float:
    """`RayExecutor.run` alone (no scheduler, no store): the median of `n` calls of the no-op
    body, one at a time; against `ray_floor_ms`, what the executor's own path adds."""
    task = Task(text="one at a time")
    ctx = Context(
        task, agent="noop", attempt=1, scheduler=_NoScheduler(), sink=None, clock=SystemClock()
    )
    times = []
    for _ in range(n):
        t = time.perf_counter()
        await executor.run(noop, task, ctx)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


async def compare(
    local: Swarm, remote: Swarm, executor: RayExecutor, tasks: int, sequential: int
) -> dict[str, Any]:
    """One task at a time, alternating in process and on Ray (so that a busy machine slows both
    alike), then the load through each."""
    out: dict[str, Any] = {}
    async with local, remote:
        out["actors_on"] = (await executor.warm(remote.registry))["work"]
        for _ in range(20):
            await local.run("warm up")
            await remote.run("warm up")
        one: dict[str, list[float]] = {"local": [], "ray": [], "local_noop": [], "ray_noop": []}
        # The no-op bodies first, on their own: right after a loaded body, the actor's process is
        # still busy finishing it, and a no-op call behind it would measure that.
        for kind, agent in (("_noop", "noop"), ("", "work")):
            for _ in range(sequential):
                for name, swarm in (("local", local), ("ray", remote)):
                    t = time.perf_counter()
                    await swarm.run("one at a time", agent=agent)
                    one[name + kind].append((time.perf_counter() - t) * 1000)
        out["one_p50_ms"] = {k: statistics.median(v) for k, v in one.items()}
        out["floor_ms"] = await ray_floor_ms(sequential)
        out["executor_noop_ms"] = await executor_noop_ms(executor, sequential)
        out["local"] = await load(local, tasks)
        out["ray"] = await load(remote, tasks)
    return out


def measure_ray(
    nodes: int,
    tasks: int,
    io_ms: float,
    cpu_ms: float,
    *,
    sequential: int = 200,
    concurrency: int = 64,
    traced: bool = True,
) -> dict[str, Any]:
    """Start a `nodes`-node Ray cluster and run the load in process and on it; see the module
    doc. `traced`: each swarm has a SQLite trace store (the same work on both paths); else
    none."""
    with tempfile.TemporaryDirectory(prefix="swarm-scale-ray-") as tmp:
        ledger = f"{tmp}/ray.ledger"
        with TemporaryRayCluster(nodes=nodes, path=[HERE, ROOT]) as cluster:
            # One actor of each agent on each node, pinned (hard: the benchmark kills no node).
            pinned = [
                {"scheduling_strategy": NodeAffinitySchedulingStrategy(n.node_id, soft=False)}
                for n in cluster.nodes
            ]
            executor = RayExecutor(cluster.address, actor_options=pinned)
            router = FakeRouter(default="work")
            local = Swarm(
                [load_agent(io_ms, cpu_ms, f"{tmp}/local.ledger", concurrency), noop],
                router=router, db=f"sqlite:///{tmp}/local.db" if traced else None, concurrency=512,
            )  # fmt: skip
            remote = Swarm(
                [load_agent(io_ms, cpu_ms, ledger, concurrency), noop],
                router=router, db=f"sqlite:///{tmp}/ray.db" if traced else None, concurrency=512,
                executor=executor,
            )  # fmt: skip
            got = asyncio.run(compare(local, remote, executor, tasks, sequential))
            cluster_nodes = len(cluster.nodes)
        runs = Counter(Path(ledger).read_text().split())
    ray_load, local_load = got["ray"], got["local"]
    ids = set(ray_load["ids"])
    return {
        "nodes": nodes,
        "tasks": tasks,
        "traced": traced,
        "io_ms": io_ms,
        "cpu_ms": cpu_ms,
        "tasks_per_s": round(ray_load["tasks_per_s"], 1),
        "p50_ms": round(ray_load["p50_ms"], 2),
        "p95_ms": round(ray_load["p95_ms"], 2),
        "lost": ray_load["lost"] + sum(1 for i in ids if runs[i] == 0),
        "twice": sum(1 for i in ids if runs[i] > 1),
        "overhead_ms": round(got["one_p50_ms"]["ray"] - got["one_p50_ms"]["local"], 3),
        "one_at_a_time_p50_ms": round(got["one_p50_ms"]["ray"], 3),
        "local_one_at_a_time_p50_ms": round(got["one_p50_ms"]["local"], 3),
        "ray_floor_ms": round(got["floor_ms"], 3),
        "executor_noop_ms": round(got["executor_noop_ms"], 3),
        "overhead_noop_ms": round(
            got["one_p50_ms"]["ray_noop"] - got["one_p50_ms"]["local_noop"], 3
        ),
        "local_tasks_per_s": round(local_load["tasks_per_s"], 1),
        "local_p50_ms": round(local_load["p50_ms"], 2),
        "local_p95_ms": round(local_load["p95_ms"], 2),
        "local_lost": local_load["lost"],
        "actor_nodes": len(set(got["actors_on"])),
        "cluster_nodes": cluster_nodes,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--io-ms", type=float, default=20.0)
    parser.add_argument("--cpu-ms", type=float, default=2.0)
    parser.add_argument("--sequential", type=int, default=200, help="tasks one at a time")
    parser.add_argument("--untraced", action="store_true", help="no trace store on either path")
    args = parser.parse_args(argv)
    figures = measure_ray(
        args.nodes,
        args.tasks,
        args.io_ms,
        args.cpu_ms,
        sequential=args.sequential,
        traced=not args.untraced,
    )
    figures["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    figures["threads"] = os.environ.get("OMP_NUM_THREADS", "unset")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
