"""Scaling out: N tasks whose agent waits `--io-ms` (simulated I/O) and computes `--cpu-ms` (a busy
loop), through one process (`Swarm`, on SQLite and on PostgreSQL) and through 1, 2 and 4
`swarm worker` processes sharing a throwaway PostgreSQL server; with `--ray`, through Ray on one
and two nodes (`benchmarks/scale_ray.py`'s `measure_ray`). Last line: one JSON object.

    python benchmarks/scale.py [--tasks 20000] [--workers 1 2 4] [--concurrency 64] [--ray]
                               [--plot benchmarks/figures/scale.png]

Every configuration gets the whole load at once: all tasks are queued (submitted in one process,
or `TraceStore.enqueue_many` in one transaction for the workers, which are started and idle
before), then run. tasks/s is N over the span from the first task queued to the last finished;
latency is each task's queued -> finished, from its row (so under a bulk load it is mostly time
spent waiting in the queue: p50 is about half the span). Lost: tasks not finished `done`; twice:
tasks whose agent ran more than once (each execution appends the task id to a log). cpu_ms_per_task:
CPU time of the swarm processes (not the PostgreSQL server's) per task, which moves much less
than the rates on a machine other jobs share.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SWARM = str(Path(sys.executable).with_name("swarm"))
FINISHED = ("done", "failed", "rejected", "cancelled")


def _env(log: Path, io_ms: float, cpu_ms: float) -> dict[str, str]:
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        SCALE_LOG=str(log),
        SCALE_IO_MS=str(io_ms),
        SCALE_CPU_MS=str(cpu_ms),
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure_rows(url: str, ids: list[str] | None, log: Path, n: int) -> dict[str, Any]:
    """tasks/s, latency and lost/twice from the task rows and the execution log."""
    from swarm.trace import TraceStore

    with TraceStore(url) as store:
        rows = store.tasks(ids=ids, limit=None) if ids is not None else store.tasks(limit=None)
    rows = [r for r in rows if r["parent_id"] is None]
    done = [r for r in rows if r["status"] == "done" and r["finished_at"] is not None]
    executions = collections.Counter(log.read_text().split()) if log.exists() else {}
    span = max(r["finished_at"] for r in done) - min(r["created_at"] for r in rows)
    latency = [(r["finished_at"] - r["created_at"]) * 1000 for r in done]
    return {
        "tasks": n,
        "tasks_per_s": round(len(done) / span, 1),
        "p50_ms": round(_percentile(latency, 0.5), 1),
        "p95_ms": round(_percentile(latency, 0.95), 1),
        "lost": n - sum(1 for r in done if executions.get(r["id"], 0) >= 1),
        "twice": sum(1 for c in executions.values() if c > 1),
        "span_s": round(span, 2),
    }


# ---- one process ------------------------------------------------------------------------------


async def _one_process(url: str, n: int, concurrency: int) -> None:
    from scale_agents import work

    from swarm import Swarm
    from swarm.testing import FakeRouter

    swarm = Swarm([work], router=FakeRouter(default="work"), db=url, concurrency=concurrency,
                  max_queue=n + 1)  # fmt: skip
    async with swarm:
        handles = [swarm.scheduler.submit_nowait("work", agent="work") for _ in range(n)]
        for h in handles:
            await h


def one_process(url: str, n: int, concurrency: int, io_ms: float, cpu_ms: float) -> dict[str, Any]:
    """`Swarm` in a fresh process (its own interpreter, as a user's would be)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "executions.log"
        subprocess.run(
            [sys.executable, __file__, "--child", "one", "--db", url, "--tasks", str(n),
             "--concurrency", str(concurrency)],
            env=_env(log, io_ms, cpu_ms), check=True,
        )  # fmt: skip
        return measure_rows(url, None, log, n)


# ---- worker processes ------------------------------------------------------------------------


def workers(
    url: str, k: int, n: int, concurrency: int, io_ms: float, cpu_ms: float, limit_s: float
) -> dict[str, Any]:
    """`k` `swarm worker` processes, started and idle, then `n` tasks enqueued at once."""
    from sqlalchemy import func, select

    from swarm.trace import TraceStore
    from swarm.trace.schema import TaskRow

    tasks = TaskRow.__table__
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "executions.log"
        procs = [
            subprocess.Popen(
                [SWARM, "worker", "--agents", "scale_agents", "--router", "keyword", "--db", url,
                 "--concurrency", str(concurrency), "--poll", "0.05"],
                env=_env(log, io_ms, cpu_ms), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            for _ in range(k)
        ]
        try:
            with TraceStore(url) as store:
                end = time.monotonic() + 120
                while len([w for w in store.workers() if w["stopped_at"] is None]) < k:
                    if time.monotonic() > end or any(p.poll() is not None for p in procs):
                        raise RuntimeError("the workers did not start")
                    time.sleep(0.1)
                ids = store.enqueue_many(
                    [_task(i) for i in range(n)]  # forced to `work`: no routing, as in one()
                )
                end = time.monotonic() + limit_s
                while time.monotonic() < end:
                    with store.engine.connect() as conn:
                        left = conn.execute(
                            select(func.count())
                            .select_from(tasks)
                            .where(tasks.c.status.not_in(FINISHED))
                        ).scalar_one()
                    if not left:
                        break
                    time.sleep(0.25)
        finally:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                p.wait(timeout=60)
        return measure_rows(url, ids, log, n)


def _task(i: int) -> Any:
    from swarm.models import Task

    return Task(text=f"work {i}", agent="work")


# ---- the plot ---------------------------------------------------------------------------------


def plot(configs: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c["name"] for c in configs]
    rates = [c["tasks_per_s"] for c in configs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    bars = left.bar(names, rates, color=["#888" if "worker" not in n else "#3a7" for n in names])
    left.bar_label(bars, fmt="%.0f")
    base = next((c for c in configs if c["name"] == "1 worker (pg)"), None)
    if base is not None:  # what perfect scaling of one worker would give
        for i, c in enumerate(configs):
            k = c.get("processes", 0)
            if "worker" in c["name"] and k > 1:
                left.plot([i - 0.4, i + 0.4], [base["tasks_per_s"] * k] * 2, "k--", lw=1)
        left.plot([], [], "k--", lw=1, label="k × one worker (ideal)")
        left.legend(loc="upper left")
    left.set_ylabel("tasks/s")
    left.set_title("throughput")
    left.tick_params(axis="x", rotation=30)
    x = range(len(configs))
    right.plot(x, [c["p50_ms"] / 1000 for c in configs], "o-", label="p50")
    right.plot(x, [c["p95_ms"] / 1000 for c in configs], "s-", label="p95")
    right.set_xticks(list(x), names, rotation=30)
    right.set_ylabel("queued → finished (s)")
    right.set_title("latency under the whole load at once")
    right.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


# ---- main -------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tasks", type=int, default=2000, help="20000 for the published figures")
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    ap.add_argument("--concurrency", type=int, default=64, help="tasks at once per process")
    ap.add_argument("--io-ms", type=float, default=20.0)
    ap.add_argument("--cpu-ms", type=float, default=2.0)
    ap.add_argument("--no-sqlite", action="store_true", help="skip one process on SQLite")
    ap.add_argument("--ray", action="store_true", help="also Ray on 1 and 2 nodes (scale_ray.py)")
    ap.add_argument("--plot", type=Path, default=None, help="write the scaling plot (PNG) here")
    ap.add_argument("--limit", type=float, default=900, help="seconds a configuration may take")
    ap.add_argument("--child", choices=["one"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "one":
        asyncio.run(_one_process(args.db, args.tasks, args.concurrency))
        return

    measure_ray = None
    if args.ray:  # checked first: not after the other configurations have run
        try:  # benchmarks/scale_ray.py: Ray's half of this benchmark (`pip install -e '.[ray]'`)
            from scale_ray import measure_ray
        except ImportError as exc:
            sys.exit(f"--ray needs benchmarks/scale_ray.py and Ray: {exc}")

    from swarm.testing.postgres import TemporaryPostgres

    # Stopped (SIGTERM): still stop the workers and the server (the `finally`s and `with`s).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    n, io_ms, cpu_ms, conc = args.tasks, args.io_ms, args.cpu_ms, args.concurrency
    configs: list[dict[str, Any]] = []

    cpu_before = [0.0]

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def record(name: str, processes: int, result: dict[str, Any]) -> None:
        load = os.getloadavg()[0]
        cpu, cpu_before[0] = children_cpu() - cpu_before[0], children_cpu()
        configs.append({"name": name, "processes": processes, **result, "load_1m": round(load, 1),
                        "cpu_ms_per_task": round(cpu / n * 1000, 2)})  # fmt: skip
        print(
            f"{name:<22} {result['tasks_per_s']:>8.1f} tasks/s  p50 {result['p50_ms']:>8.1f} ms"
            f"  p95 {result['p95_ms']:>8.1f} ms  lost {result['lost']}  twice {result['twice']}",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as tmp, TemporaryPostgres() as pg:
        cpu_before[0] = children_cpu()
        if not args.no_sqlite:
            url = f"sqlite:///{Path(tmp) / 'one.db'}"
            record("1 process (sqlite)", 1, one_process(url, n, conc, io_ms, cpu_ms))
        record("1 process (pg)", 1, one_process(pg.new_database(), n, conc, io_ms, cpu_ms))
        for k in args.workers:
            result = workers(pg.new_database(), k, n, conc, io_ms, cpu_ms, args.limit)
            record(f"{k} worker{'s' if k > 1 else ''} (pg)", k, result)
    if measure_ray is not None:
        for nodes in (1, 2):
            result = measure_ray(nodes=nodes, tasks=n, io_ms=io_ms, cpu_ms=cpu_ms)
            record(f"ray {nodes} node{'s' if nodes > 1 else ''}", nodes, result)
    by_name = {c["name"]: c for c in configs}
    speedups = {
        f"{k}_workers_vs_1": round(by_name[f"{k} workers (pg)"]["tasks_per_s"]
                                   / by_name["1 worker (pg)"]["tasks_per_s"], 2)
        for k in args.workers if k > 1 and "1 worker (pg)" in by_name
    }  # fmt: skip
    summary = {
        "date": datetime.date.today().isoformat(),
        "tasks": n,
        "io_ms": io_ms,
        "cpu_ms": cpu_ms,
        "concurrency_per_process": conc,
        "configs": configs,
        "speedups": speedups,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "threads": "OMP_NUM_THREADS=1",
        "median_load_1m": statistics.median(c["load_1m"] for c in configs),
    }
    if args.plot is not None:
        title = (f"{n:,} tasks, {io_ms:g} ms I/O + {cpu_ms:g} ms CPU each, {conc} at once per "
                 f"process; {os.cpu_count()} shared cores")  # fmt: skip
        plot(configs, args.plot, title)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
