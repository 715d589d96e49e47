"""The trace store's write rate: the rows a traced run writes (a task row queued, started and
finished, its routing decision, its agent span) through `TraceStore`, on a SQLite file (the writer
process, and the writer thread) and on PostgreSQL (a throwaway server: the psycopg writer, COPY and
grouped UPDATEs, and the SQLAlchemy Core path it replaced). Last line: one JSON object.

    python benchmarks/store.py [--tasks 5000] [--repeat 3] [--wave 500]

The ops are pushed as the scheduler pushes them, in waves: a wave's tasks are queued and routed
while the previous wave's start, record a span and finish. The time runs from the first op to the
flush that commits the last. Rows/s counts inserted rows (tasks + decisions + spans); each task
row is also updated (folded into its insert when both land in one batch, as the writer does).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarm import TraceStore
from swarm.context import Span
from swarm.models import Decision, Result, Task, TaskStatus

Open = Callable[[bool], TraceStore]


def load(store: TraceStore, n: int, wave: int, backlog: bool) -> float:
    """Write n tasks' rows in waves; seconds from the first op until all are committed, or with
    `backlog` (a store whose writer sleeps until flushed) from the flush that writes them all."""
    run_id = store.start_run(kind="bench")
    decision = Decision("noop", 0.93, (("noop", 0.93), ("other", 0.05)), version="bench")
    start = time.perf_counter()
    previous: list[Task] = []
    for first in range(0, n + wave, wave):
        current = [
            Task(text=f"route me {i}", run_id=run_id) for i in range(first, min(first + wave, n))
        ]
        for task in current:
            store.task_queued(task)
            store.record_decision(task.id, decision)
        for task in previous:
            store.task_started(task.id, "noop", 1)
            span = Span("agent", "noop", task.id, run_id=run_id, attributes={"tokens": 12})
            span.ended_at = span.started_at + 0.001
            store.record_span(span)
            store.task_finished(
                Result(task_id=task.id, status=TaskStatus.DONE, agent="noop", output="ok")
            )
        previous = current
    if backlog:
        start = time.perf_counter()
    store.flush_sync()
    elapsed = time.perf_counter() - start
    store.finish_run(run_id)
    return elapsed


def measure(open_store: Open, n: int, wave: int, repeat: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {"ops_to_commit": [], "backlog": []}
    for _ in range(repeat):
        for mode, rate in rates.items():
            rate.append(once(open_store, n, wave, backlog=mode == "backlog"))
    return {
        f"{mode}_{what}": round(f(rate))
        for mode, rate in rates.items()
        for what, f in (("median", statistics.median), ("min", min), ("max", max))
    }


def once(open_store: Open, n: int, wave: int, *, backlog: bool) -> float:
    """Rows per second of one load on a new store."""
    store = open_store(backlog)
    try:
        elapsed = load(store, n, wave, backlog)
        rows = store.count("tasks") + store.count("routing_decisions") + store.count("spans")
        done = len(store.tasks(status="done", limit=None))
    finally:
        store.close()
    assert rows == 3 * n and done == n, (rows, done)  # nothing lost, every task finished
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wave", type=int, default=500)
    args = parser.parse_args()

    from swarm.testing.postgres import TemporaryPostgres

    folder = Path(tempfile.mkdtemp(prefix="swarm-bench-store-"))
    names = iter(range(10**6))

    def options(backlog: bool) -> dict[str, Any]:
        # backlog: the writer sleeps until the flush, which writes everything in one batch
        return {"flush_interval": 3600, "max_batch": 10**9} if backlog else {}

    def sqlite(writer: str) -> Open:
        def open_store(backlog: bool) -> TraceStore:
            url = f"sqlite:///{folder}/{next(names)}.db"
            return TraceStore(url, writer=writer, **options(backlog))  # type: ignore[arg-type]

        return open_store

    results: dict[str, dict[str, float]] = {}
    configs: list[tuple[str, Open]] = [
        ("sqlite, writer process", sqlite("process")),
        ("sqlite, writer thread", sqlite("thread")),
    ]
    with TemporaryPostgres() as server:

        def postgres(core: bool) -> Open:
            def open_store(backlog: bool) -> TraceStore:
                store = TraceStore(server.new_database(), **options(backlog))
                if core:  # the SQLAlchemy Core path (executemany), as before the psycopg writer
                    store._postgres = None
                return store

            return open_store

        configs += [
            ("postgres, psycopg writer (COPY)", postgres(False)),
            ("postgres, SQLAlchemy Core", postgres(True)),
        ]
        for name, open_store in configs:
            results[name] = measure(open_store, args.tasks, args.wave, args.repeat)
            r = results[name]
            print(
                f"{name:32} ops to commit {r['ops_to_commit_median']:>7,} rows/s "
                f"({r['ops_to_commit_min']:,}-{r['ops_to_commit_max']:,}); "
                f"backlog {r['backlog_median']:>7,} rows/s "
                f"({r['backlog_min']:,}-{r['backlog_max']:,})",
                flush=True,
            )
        server_version = server.execute("SHOW server_version")[0][0]
    print(
        json.dumps(
            {
                "tasks": args.tasks,
                "rows": 3 * args.tasks,
                "repeat": args.repeat,
                "wave": args.wave,
                "results": results,
                "python": platform.python_version(),
                "postgres": server_version,
                "cpus": os.cpu_count(),
                "argv": sys.argv[1:],
            }
        )
    )


if __name__ == "__main__":
    main()
