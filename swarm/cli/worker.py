"""`swarm worker` (claim and run queued tasks under a lease, beside other workers on one store),
`swarm submit` (put tasks in that queue from any process) and `swarm workers` (who holds leases).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.text import Text

from swarm.cli.common import (
    DB_OPTION,
    EXECUTOR_OPTION,
    MODELS_OPTION,
    ROUTER_OPTION,
    importable_cwd,
    llm_from_env,
    load_router,
    make_console,
    registry_for,
)
from swarm.views import Column, FittedTable

__all__ = ["WorkersTable", "submit", "worker", "workers"]

_FINISHED = ("done", "failed", "rejected", "cancelled")


@click.command("worker")
@click.option("--agents", "agents_spec", required=True, help="Module that defines the agents.")
@DB_OPTION
@ROUTER_OPTION
@MODELS_OPTION
@EXECUTOR_OPTION
@click.option("--concurrency", default=16, show_default=True, help="Tasks held at once.")
@click.option(
    "--lease",
    default=30.0,
    show_default=True,
    help="Seconds a lease lasts without a heartbeat: how soon others take a dead worker's tasks.",
)
@click.option("--heartbeat", default=None, type=float, help="Seconds between renewals [lease/3].")
@click.option(
    "--poll", default=0.5, show_default=True, help="Seconds between looks at an empty queue."
)
@click.option(
    "--idle-exit", default=None, type=float, help="Exit after this many seconds with nothing to do."
)
def worker(
    agents_spec: str,
    db: str,
    router_spec: str,
    models_dir: str,
    executor_spec: str | None,
    concurrency: int,
    lease: float,
    heartbeat: float | None,
    poll: float,
    idle_exit: float | None,
) -> None:
    """Claim queued tasks from the store and run them, beside other workers, until stopped.

    Each task is leased to this worker while it runs and renewed every heartbeat; the tasks of a
    worker that dies are taken over once their lease expires. SIGTERM or Ctrl-C: stop claiming
    and finish what runs (twice: cancel it)."""
    import asyncio
    import signal

    from swarm.executors import executor_from_spec
    from swarm.worker import Worker

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    importable_cwd()
    registry = registry_for(agents_spec)
    router = load_router(router_spec, registry, models_dir, make_console())
    w = Worker(
        registry,
        db=db,
        router=router,
        router_spec=router_spec,
        concurrency=concurrency,
        lease=lease,
        heartbeat=heartbeat,
        poll=poll,
        agents_spec=agents_spec,  # recorded with its run, for `swarm resume`
        llm=llm_from_env(),
        executor=executor_from_spec(executor_spec),
    )

    async def go() -> None:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        assert main is not None

        def on_signal() -> None:
            if w.stopping:
                main.cancel()  # the second time: do not wait for running tasks
            else:
                err.print("[yellow]stopping: finishing the tasks this worker holds[/yellow]")
                w.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        drained = False
        await w.start()
        err.print(
            f"worker {w.id}: agents {', '.join(registry.names)} · {escape(db)} · lease {lease:g}s"
            f" · concurrency {concurrency}"
        )
        try:
            await w.serve(idle_exit=idle_exit)
            drained = True
        finally:
            await w.close(drain=drained)

    try:
        asyncio.run(go())
    except asyncio.CancelledError:
        pass
    err.print(f"worker {w.id}: ran {w.claimed} tasks; lost the lease of {w.lost}")


@click.command("submit")
@click.argument("texts", nargs=-1)
@click.option(
    "--file", "file_", type=click.Path(exists=True, dir_okay=False), help="One task per line."
)
@click.option("--agent", default=None, help="Skip routing: send to this agent.")
@click.option("--priority", default=0, show_default=True, help="Higher is claimed first.")
@click.option("--session", default=None, help="Session id shared by the tasks.")
@DB_OPTION
@click.option("--wait", is_flag=True, help="Wait until the tasks are finished; show results.")
@click.option("--timeout", default=None, type=float, help="Seconds --wait waits at most.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
def submit(
    texts: tuple[str, ...],
    file_: str | None,
    agent: str | None,
    priority: int,
    session: str | None,
    db: str,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Queue TEXTS (or the lines of --file) for the workers of the store (`swarm worker`).

    Prints the task ids; with --wait, each task's result once workers have run it. Exit code,
    as `swarm run`'s: 1 if any task did not end `done` (failed, rejected as out of scope,
    cancelled), 3 if --timeout ran out first."""
    from swarm.models import Task
    from swarm.trace import TraceStore

    items = list(texts)
    if file_:
        items += [line.strip() for line in Path(file_).read_text().splitlines() if line.strip()]
    if not items:
        raise click.UsageError("give at least one text, or --file")
    out = make_console()
    with TraceStore(db) as store:
        ids = store.enqueue_many(
            [Task(text=t, agent=agent, priority=priority, session=session) for t in items]
        )
        rows: list[dict[str, Any]] = []
        timed_out = False
        if wait:
            rows, timed_out = _wait(store, ids, timeout)
    if as_json:
        click.echo(json.dumps({"ids": ids, "tasks": rows, "timed_out": timed_out}, default=str))
    elif not wait:
        for task_id in ids:
            out.print(task_id)
    else:
        for row in rows:
            shown = row["output"] if row["status"] == "done" else row["error"]
            out.print(
                f"{row['id']}  {row['status']:<9} {row['agent'] or '-':<14} {escape(_short(shown))}"
            )
    if timed_out:
        sys.exit(3)
    if wait and any(r["status"] != "done" for r in rows):
        sys.exit(1)


def _wait(store: Any, ids: list[str], timeout: float | None) -> tuple[list[dict[str, Any]], bool]:
    """The rows of `ids` once all are finished (in `ids`' order), polling; and whether `timeout`
    ran out first."""
    end = None if timeout is None else time.monotonic() + timeout
    delay = 0.05
    while True:
        rows = {r["id"]: r for r in store.tasks(ids=ids, limit=None)}
        if all(rows[i]["status"] in _FINISHED for i in ids):
            return [rows[i] for i in ids], False
        if end is not None and time.monotonic() >= end:
            return [rows[i] for i in ids], True
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def _short(value: Any, width: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command("workers")
@DB_OPTION
@click.option("--all", "show_all", is_flag=True, help="Stopped workers too.")
@click.option("--json", "as_json", is_flag=True)
def workers(db: str, show_all: bool, as_json: bool) -> None:
    """The processes that hold leases on the store's tasks: workers, runs, resumes.

    STATE: running; silent (no heartbeat for a whole lease: its tasks go to others; on another
    host its process cannot be checked from here); dead (on this host, its process is gone);
    stopped (shown with --all). LEASES: the tasks it holds now."""
    from swarm.trace import TraceStore

    with TraceStore(db) as store:
        rows = [w for w in store.workers() if show_all or w["state"] != "stopped"]
    if as_json:
        click.echo(json.dumps({"workers": rows}, default=str))
        return
    make_console().print(WorkersTable(rows))


class WorkersTable:
    """Lease owners (`TraceStore.workers()` rows). At 80 columns the kind and agents module fold
    under the worker id and the pid under the host; ids are never cut."""

    COLUMNS = (
        Column("worker", keep=9),
        Column("state", keep=8),
        Column("leases", keep=7, justify="right"),
        Column("beat", keep=6, justify="right"),
        Column("host", keep=4),
        Column("pid", keep=3, fold_into="host"),
        Column("kind", keep=2, fold_into="worker"),
        Column("agents", keep=1, fold_into="worker"),
    )
    _STYLES = {"running": "green", "silent": "yellow", "dead": "red", "stopped": "grey50"}

    def __init__(self, workers: Iterable[dict[str, Any]]) -> None:
        self.workers = list(workers)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.workers:
            yield Text("no workers", style="grey50")
            return
        rows = [
            {
                "worker": w["id"],
                "state": Text(w["state"], style=self._STYLES.get(w["state"], "")),
                "leases": str(w["leases"]),
                "beat": f"{w['heartbeat_age_s']:g}s",
                "host": w["host"],
                "pid": str(w["pid"]),
                "kind": w["kind"],
                "agents": w["agents"] or "-",
            }
            for w in self.workers
        ]
        yield FittedTable("workers", self.COLUMNS, rows)
        yield Text("beat: seconds since its last heartbeat", style="grey50")
