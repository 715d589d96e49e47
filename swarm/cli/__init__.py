"""The `swarm` command: run tasks, look at traces, resume unfinished work, train routers.

Thin by design: each command parses, calls the library, and renders with `swarm.cli.views`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

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
from swarm.errors import StoreError, SwarmError, TaskNotFound

__all__ = ["load_router", "llm_from_env", "main", "registry_for"]

console = make_console  # the name the other commands and tests know


class _Group(click.Group):
    """Turns swarm's own errors into one red line and exit code 2, never a traceback.

    The commands of other modules are imported when they run, not to draw `swarm --help`
    (`LAZY`): that help reads their summaries from the source, so it never waits for the
    trace store, the router or the console to import.
    """

    describing = False  # True while `--help` lists the commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in LAZY:
            return super().get_command(ctx, cmd_name)
        module, _, attr = LAZY[cmd_name].partition(":")
        if self.describing:
            summary = _docstring(module, attr)
            if summary is not None:
                return click.Command(cmd_name, help=summary)
        command = getattr(importlib.import_module(module), attr)
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.describing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self.describing = False

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SwarmError as exc:
            # soft_wrap: one line however narrow the terminal, so it can be grepped and copied
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                f"[red]error:[/red] {escape(str(exc))}"
            )
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="swarm-dispatch")
def main() -> None:
    """swarm: many specialised agents behind one learned router."""
    # Deterministic, quiet CPU inference: see BENCHMARKS.md on threads.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for stream in (sys.stdout, sys.stderr):
        # Text an agent returned may hold a lone surrogate (half an emoji): print it escaped.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _json_out(obj: Any) -> None:
    click.echo(json.dumps(obj, default=str))


# ---- run -------------------------------------------------------------------------------------


@main.command()
@click.argument("texts", nargs=-1)
@click.option(
    "--agents",
    "agents_spec",
    default=None,
    help="Module that defines the agents. Default: installed plug-ins (entry points swarm.agents).",
)
@click.option("--agent", "forced", default=None, help="Skip routing: send to this agent.")
@click.option(
    "--file", "file_", type=click.Path(exists=True, dir_okay=False), help="One task per line."
)
@click.option("--session", default=None, help="Session id shared by the tasks.")
@click.option("--concurrency", default=64, show_default=True, help="Agents running at once.")
@ROUTER_OPTION
@MODELS_OPTION
@DB_OPTION
@EXECUTOR_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
def run(
    texts: tuple[str, ...],
    agents_spec: str | None,
    forced: str | None,
    file_: str | None,
    session: str | None,
    concurrency: int,
    router_spec: str,
    models_dir: str,
    db: str,
    executor_spec: str | None,
    as_json: bool,
) -> None:
    """Route and run TEXTS (or the lines of --file); print each decision and result."""
    import asyncio

    from swarm.cli.views import DecisionView, ResultView
    from swarm.executors import executor_from_spec
    from swarm.swarm import Swarm

    items = list(texts)
    if file_:
        items += [line.strip() for line in Path(file_).read_text().splitlines() if line.strip()]
    if not items:
        raise click.UsageError("give at least one text, or --file")
    out = console()
    importable_cwd()
    registry = registry_for(agents_spec)
    executor = executor_from_spec(executor_spec)
    router = load_router(router_spec, registry, models_dir, out) if not forced else _NoRouter()
    swarm = Swarm(
        registry,
        router=router,
        db=db,
        llm=llm_from_env(),
        concurrency=concurrency,
        executor=executor,
        run_meta={
            "router": router_spec,
            "agents": agents_spec,
            "executor": repr(executor) if executor else "local",
        },
    )

    store_error: list[StoreError] = []

    from swarm.cli.approvals import tell_waiting

    async def go() -> list[Any]:
        results: list[Any] = []
        try:
            async with swarm, tell_waiting(swarm, db):
                handles = [await swarm.submit(t, agent=forced, session=session) for t in items]
                results = [await h for h in handles]
        except StoreError as exc:  # the tasks ran; their trace is incomplete: show both
            if not results:
                raise
            store_error.append(exc)
        return results

    results = asyncio.run(go())
    if as_json:
        _json_out({"run_id": swarm.run_id, "results": [r.model_dump(mode="json") for r in results]})
    else:
        for text, r in zip(items, results, strict=True):
            out.print(f"[bold]›[/bold] {text}")
            if r.decision is not None:
                out.print(DecisionView(r.decision))
            out.print(ResultView(r))
        out.print(f"[grey50]run {swarm.run_id} · `swarm traces show TASK_ID` for a trace[/grey50]")
    if store_error:
        raise store_error[0]  # one red line, exit 2
    if any(not r.ok for r in results):
        sys.exit(1)


class _NoRouter:
    """For `--agent NAME`: every task names its agent, so nothing is routed."""

    blocking = False
    version = "none"

    def route(self, texts: list[str]) -> list[Any]:
        raise AssertionError("tasks with an agent are not routed")


# ---- traces ----------------------------------------------------------------------------------


@main.group(invoke_without_command=True)
@DB_OPTION
@click.option("--limit", default=20, show_default=True)
@click.option(
    "--run", "run_id", default=None, help="Only this run's tasks (the end of its id will do)."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def traces(ctx: click.Context, db: str, limit: int, run_id: str | None, as_json: bool) -> None:
    """Recent runs and tasks; `swarm traces show TASK_ID` for one task's tree."""
    ctx.obj = {"db": db, "as_json": as_json}
    if ctx.invoked_subcommand is not None:
        return
    from swarm.cli.views import RunsTable, TasksTable
    from swarm.trace import TraceStore

    with TraceStore(db) as store:
        runs = store.runs(limit=limit)
        if run_id is not None:
            run_id = str(store.find_run(run_id)["id"])  # a part of the id will do
        tasks = store.tasks(run_id=run_id, roots_only=True, limit=limit)
    if as_json:
        _json_out({"runs": runs, "tasks": tasks})
        return
    out = console()
    out.print(RunsTable(runs))
    out.print(TasksTable(tasks, title=f"tasks of run {run_id}" if run_id else "recent tasks"))


@traces.command("show")
@click.argument("task_id")
@click.option("--db", default=None, help="Trace store URL (as for `swarm traces`).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def traces_show(ctx: click.Context, task_id: str, db: str | None, as_json: bool) -> None:
    """The tree of TASK_ID (a unique prefix will do): routing decision, spans, child tasks."""
    from swarm.cli.usage import usage_line
    from swarm.cli.views import TaskTree
    from swarm.trace import TraceStore
    from swarm.usage import PriceTable, tree_usage

    with TraceStore(db or ctx.obj["db"]) as store:
        tree = store.task_tree(task_id)
    tokens = tree_usage(tree, PriceTable.from_env())
    if as_json or ctx.obj["as_json"]:
        _json_out({**tree, "usage": tokens.to_json()})
    else:
        console().print(TaskTree(tree))
        if tokens.calls:
            console().print(usage_line(tokens, label="tokens (with child tasks)"))


# ---- resume ----------------------------------------------------------------------------------


@main.command()
@DB_OPTION
@click.option("--agents", "agents_spec", default=None, help="Default: the module the run used.")
@click.option("--router", "router_spec", default=None, help="Default: the router the run used.")
@MODELS_OPTION
@click.option(
    "--force",
    is_flag=True,
    help="Also take the tasks leased to a live process (they may then run twice).",
)
@click.option("--json", "as_json", is_flag=True)
def resume(
    db: str,
    agents_spec: str | None,
    router_spec: str | None,
    models_dir: str,
    force: bool,
    as_json: bool,
) -> None:
    """Run again every task a killed process left queued, running or waiting for a person
    (finished ones never rerun); a waiting one waits again for its decision (`swarm approve`).

    Tasks leased to a live process (a `swarm run`, a `swarm worker`) are left to it: run twice,
    their side effects would happen twice. It says whose (worker, pid and host, lease left);
    `--force` takes them anyway. A dead process on this host is seen at once; elsewhere, once
    its leases expire. Tasks queued for workers (`swarm submit`) are left to the workers."""
    import asyncio

    from swarm.agents import AgentRegistry
    from swarm.cli.approvals import tell_waiting
    from swarm.models import Task, TaskStatus
    from swarm.swarm import Swarm
    from swarm.trace import TraceStore
    from swarm.trace.leases import resumable, worker_alive
    from swarm.trace.owner import describe_owner

    out = console()
    err = Console(stderr=True, highlight=False)
    importable_cwd()
    store = TraceStore(db)
    try:
        unfinished = store.unfinished_tasks()
        owners = {r["lease_owner"] for r in unfinished if r["lease_owner"]}
        workers = {w["id"]: w for w in store.workers(owners)} if owners else {}
        rows, leased, queued = resumable(unfinished, workers, force=force)
        live: dict[str, dict[str, Any]] = {}
        # Rows from before leases: the run's owner process decides (exact on this host).
        for run_id in {r["run_id"] for r in rows if r["run_id"] and not r["lease_owner"]}:
            owner = None if force else store.live_owner(run_id)
            if owner is not None:
                live[run_id] = owner
                err.print(
                    f"[yellow]run {run_id} is still running ({describe_owner(owner)}): its "
                    "unfinished tasks are left to it; `swarm resume --force` takes them "
                    "anyway[/yellow]"
                )
        rows = [r for r in rows if r["lease_owner"] or r["run_id"] not in live]
        for held in leased.values():
            for run_id in held["runs"] or ["(none)"]:
                live[run_id] = {k: held[k] for k in ("worker", "host", "pid", "lease_left_s")}
                err.print(
                    f"[yellow]run {run_id} is still running (worker {held['worker']}, pid "
                    f"{held['pid']} on {held['host']}, lease {held['lease_left_s']:g}s left): "
                    f"its {len(held['tasks'])} unfinished tasks are left to it; "
                    "`swarm resume --force` takes them anyway[/yellow]"
                )
        if queued:
            err.print(
                f"[yellow]{len(queued)} tasks wait in the queue for a worker (`swarm worker`): "
                "left to the workers[/yellow]"
            )
        # Take the roots under this process's lease; a worker may have claimed some meanwhile.
        dead = [o for o in owners if not worker_alive(workers.get(o))]
        candidates = [r for r in rows if r["parent_id"] is None]
        if candidates:
            store.hold_leases(kind="resume", agents=agents_spec)
        got = set(store.take([r["id"] for r in candidates], dead=dead, force=force))
        roots = [r for r in candidates if r["id"] in got]
        if len(roots) < len(candidates):
            err.print(
                f"[yellow]{len(candidates) - len(roots)} tasks were taken by a worker meanwhile: "
                "left to it[/yellow]"
            )
        # A child is made again by its parent when the parent reruns; the old one is superseded.
        orphans = [r["id"] for r in rows if r["parent_id"] is not None]
        store.mark_tasks(orphans, TaskStatus.CANCELLED, "superseded: its parent was resumed")
        by_run: dict[str | None, list[dict[str, Any]]] = {}
        for r in roots:
            by_run.setdefault(r["run_id"], []).append(r)
        summary: list[dict[str, Any]] = []
        for run_id, tasks in by_run.items():
            run = store.run(run_id) if run_id else None
            spec = agents_spec or (run or {}).get("agents")
            if not spec:
                raise TaskNotFound(
                    f"run {run_id} recorded no agents module; pass --agents MODULE to resume it"
                )
            rspec = router_spec or (run or {}).get("router") or "auto"
            registry = AgentRegistry()
            registry.load_module(spec)
            router = load_router(rspec, registry, models_dir, out)
            swarm = Swarm(
                registry,
                router=router,
                db=store,
                llm=llm_from_env(),
                run_kind="resume",
                run_meta={"router": rspec, "agents": spec, "resumes": run_id},
            )

            async def go(swarm: Swarm = swarm, tasks: list[dict[str, Any]] = tasks) -> list[Any]:
                async with swarm, tell_waiting(swarm, db):
                    handles = []
                    for r in tasks:
                        task = Task(
                            id=r["id"],
                            text=r["text"],
                            payload=r["payload"] or {},
                            priority=r["priority"],
                            session=r["session_id"],
                            agent=r["forced_agent"],
                            run_id=r["run_id"],
                        )
                        handles.append(await swarm.scheduler.resume(task))
                    return [await h for h in handles]

            results = asyncio.run(go())
            summary.append(
                {
                    "run_id": run_id,
                    "resumed": len(results),
                    "done": sum(r.ok for r in results),
                    "results": [r.model_dump(mode="json") for r in results],
                }
            )
    finally:
        store.close()
    if as_json:
        _json_out(
            {"runs": summary, "superseded_children": len(orphans), "live_runs": live,
             "leased": list(leased.values()), "queued": len(queued)}
        )  # fmt: skip
        return
    if not summary and not live and not queued:
        out.print("nothing to resume: every task in the store is finished")
    for s in summary:
        out.print(f"run {s['run_id']}: resumed {s['resumed']} tasks, {s['done']} done")


LAZY = {
    "approvals": "swarm.cli.approvals:approvals",
    "approve": "swarm.cli.approvals:approve",
    "console": "swarm.cli.console_command:console_command",
    "demo": "swarm.cli.demo:demo",
    "diff": "swarm.cli.scenarios:diff",
    "feedback": "swarm.cli.feedback:feedback",
    "mcp": "swarm.cli.mcp:mcp",
    "replay": "swarm.cli.scenarios:replay",
    "router": "swarm.cli.router:router",
    "serve": "swarm.cli.serve:serve",
    "submit": "swarm.cli.worker:submit",
    "test": "swarm.cli.scenarios:test",
    "usage": "swarm.cli.usage:usage",
    "worker": "swarm.cli.worker:worker",
    "workers": "swarm.cli.worker:workers",
}
"""The commands of other modules: name -> `module:attribute` of the click command."""


def _docstring(module: str, function: str) -> str | None:
    """The docstring of `function` in `module`'s source, read without importing it (None when
    it cannot be found that way: the caller imports the module instead)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return ast.get_docstring(node)
    return None
