"""Scheduler throughput and overhead: N no-op tasks through the fake router, untraced and with the
SQLite trace store on, beside the same workload through LangGraph. Last line: one JSON object.

    python benchmarks/scheduler.py [--tasks 50000] [--repeat 3] [--langgraph-tasks 3000]

Besides wall-clock rates it reports this process's CPU time per untraced task: on a machine other
jobs share, that figure moves much less than the rates do, so it is the one to compare across
versions (run the script with PYTHONPATH pointing at each, interleaved). "Watched" runs are
untraced with one subscriber reading every event (`swarm.events`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from swarm import Swarm, TraceStore, agent
from swarm.events import Subscription
from swarm.testing import FakeRouter


@agent(max_concurrency=64)
async def noop(task, ctx):
    return "ok"


ROUTER = FakeRouter(default="noop")


async def throughput(n: int, db: str | None, watched: bool = False) -> tuple[float, float]:
    """Tasks per second from the first submit until every result (and row) is in, and this
    process's CPU µs per task over the same span. `watched`: a subscriber reads every event
    (`swarm.events`), as `swarm serve`'s `/v1/events` does."""
    swarm = Swarm([noop], router=ROUTER, db=db)
    await swarm.start()
    seen = 0

    async def watch(events: Subscription) -> None:
        nonlocal seen
        async for _ in events:
            seen += 1

    events = swarm.events.subscribe(max_buffer=n * 10) if watched else None
    reader = asyncio.ensure_future(watch(events)) if events is not None else None
    start, cpu = time.perf_counter(), time.process_time()
    handles = [await swarm.submit("route me") for _ in range(n)]
    for h in handles:
        await h
    if events is not None and reader is not None:
        events.close()
        await reader
        assert seen == n * 5, seen  # queued, routed, started, span, done
    await swarm.close()  # traced: includes writing the last rows
    return n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6


async def overhead_us(n: int) -> tuple[float, float]:
    """p50 and p99 of one task at a time, submit to result, untraced."""
    async with Swarm([noop], router=ROUTER, db=None) as swarm:
        for _ in range(200):
            await swarm.run("warm up")
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            await swarm.run("route me")
            lat.append((time.perf_counter() - t) * 1e6)
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def queued(n: int) -> dict[str, float]:
    """Memory of n tasks waiting in the queue (the agent is held shut)."""
    gate = asyncio.Event()

    @agent(max_concurrency=1, timeout=None)
    async def held(task, ctx):
        await gate.wait()
        return "ok"

    before = rss_mb()
    async with Swarm([held], router=FakeRouter(default="held"), db=None, max_queue=n + 1) as s:
        handles = [s.scheduler.submit_nowait("queued task") for _ in range(n)]
        await asyncio.sleep(0.5)  # routed into the lane, still waiting
        after = rss_mb()
        gate.set()
        for h in handles:
            await h
    return {
        "queued_tasks": n,
        "queued_rss_mb": round(after, 1),
        "queued_delta_mb": round(after - before, 1),
    }


async def langgraph_tps(n: int, in_flight: int) -> float:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict, total=False):
        text: str
        agent: str
        output: str

    def route(state: State) -> State:
        return {"agent": ROUTER.route([state["text"]])[0].agent or ""}

    async def run_agent(state: State) -> State:
        return {"output": "ok"}

    g = StateGraph(State)
    g.add_node("route", route)
    g.add_node("agent", run_agent)
    g.add_edge(START, "route")
    g.add_edge("route", "agent")
    g.add_edge("agent", END)
    graph = g.compile()
    sem = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with sem:
            await graph.ainvoke({"text": "route me"})

    for _ in range(50):
        await one()
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--queued", type=int, default=100_000)
    ap.add_argument("--langgraph-tasks", type=int, default=3_000)
    ap.add_argument("--child", choices=["queued"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "queued":  # a fresh process, so the figure is not inflated by earlier runs
        print(json.dumps(asyncio.run(queued(args.queued))))
        return

    untraced, traced, watched, cpu_us, watched_cpu_us = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            rate, cpu = asyncio.run(throughput(args.tasks, None))
            untraced.append(rate)
            cpu_us.append(cpu)
            rate, cpu = asyncio.run(throughput(args.tasks, None, watched=True))
            watched.append(rate)
            watched_cpu_us.append(cpu)
            url = f"sqlite:///{Path(tmp) / f'bench{i}.db'}"
            traced.append(asyncio.run(throughput(args.tasks, url))[0])
            with TraceStore(url) as store:  # every task and span really is there
                assert store.count("tasks") == args.tasks and store.count("spans") == args.tasks
            print(
                f"run {i + 1}: untraced {untraced[-1]:,.0f}/s  traced {traced[-1]:,.0f}/s  "
                f"watched {watched[-1]:,.0f}/s"
            )
    p50, p99 = asyncio.run(overhead_us(3000))
    child = subprocess.run(
        [sys.executable, __file__, "--child", "queued", "--queued", str(args.queued)],
        capture_output=True,
        text=True,
        check=True,
    )
    mem = json.loads(child.stdout.strip().splitlines()[-1])
    result: dict[str, object] = {
        "tasks": args.tasks,
        "repeat": args.repeat,
        "tasks_per_s_untraced": round(statistics.median(untraced)),
        "tasks_per_s_traced": round(statistics.median(traced)),
        "cpu_us_per_task_untraced": round(min(cpu_us), 1),
        "tasks_per_s_watched": round(statistics.median(watched)),
        "cpu_us_per_task_watched": round(min(watched_cpu_us), 1),
        "p50_overhead_us": round(p50, 1),
        "p99_overhead_us": round(p99, 1),
        **mem,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    try:
        lg = asyncio.run(langgraph_tps(args.langgraph_tasks, in_flight=100))
        result["langgraph_tasks_per_s"] = round(lg)
        result["ratio_vs_langgraph"] = round(statistics.median(untraced) / lg, 1)
        result["ratio_traced_vs_langgraph"] = round(statistics.median(traced) / lg, 1)
    except ImportError:
        result["langgraph_tasks_per_s"] = None  # pip install -e '.[bench]'
    print(json.dumps(result))


if __name__ == "__main__":
    main()
