"""`swarm demo`: the main job of a fresh checkout: the bank demo (`swarm.agents.bank.demo`), or
with `--quickstart` the small help desk: requests, decisions, results and one trace.
"""

from __future__ import annotations

import asyncio
import sys
import time

import click
from rich.table import Table
from rich.text import Text

from swarm.agents import AgentRegistry
from swarm.cli.common import DB_OPTION, load_router, make_console
from swarm.cli.views import TaskTree, _short, _status
from swarm.trace import TraceStore

EXAMPLE = "swarm.examples.quickstart"


@click.command()
@DB_OPTION
@click.option("--router", "router_spec", default="auto", show_default=True)
@click.option("--models-dir", default="storage/models", show_default=True)
@click.option(
    "--report",
    "report_path",
    default="storage/reports/bank.html",
    show_default=True,
    help="Where the bank demo writes its HTML report.",
)
@click.option("--quickstart", is_flag=True, help="The small help desk instead of the bank.")
def demo(db: str, router_spec: str, models_dir: str, report_path: str, quickstart: bool) -> None:
    """The main job: the bank's customer and engineering desks on BANKING77, end to end.

    Seeds the sandbox bank, trains the router if none matches (a second run reuses it), runs the
    bank suites, prints the summary and writes the HTML report. `--quickstart` runs the small
    example help desk instead.
    """
    if not quickstart:
        from swarm.agents.bank.demo import run_demo

        passed = run_demo(make_console(), db, f"{models_dir}/bank", report_path)
        sys.exit(0 if passed else 1)
    _quickstart(db, router_spec, models_dir)


def _quickstart(db: str, router_spec: str, models_dir: str) -> None:
    from importlib import import_module

    from swarm.swarm import Swarm

    out = make_console()
    pack = import_module(EXAMPLE)
    registry = AgentRegistry()
    registry.load_module(EXAMPLE)
    out.rule(f"[bold]swarm demo[/bold] · {len(registry)} agents from {EXAMPLE}")
    start = time.perf_counter()
    router = load_router(router_spec, registry, models_dir, out)
    out.print(
        f"router {getattr(router, 'version', '?')} ready in {time.perf_counter() - start:.1f}s"
    )

    swarm = Swarm(
        registry,
        router=router,
        db=db,
        run_kind="demo",
        run_meta={"agents": EXAMPLE, "router": router_spec},
    )

    async def go() -> list:
        async with swarm:
            handles = [await swarm.submit(text, session="demo") for text in pack.DEMO_REQUESTS]
            return [await h for h in handles]

    results = asyncio.run(go())
    table = Table(title="requests", title_justify="left")
    for col, ratio in (("request", 3), ("route", 3), ("status", 1), ("answer", 4)):
        table.add_column(col, ratio=ratio)
    for text, r in zip(pack.DEMO_REQUESTS, results, strict=True):
        d = r.decision
        route = d.reason if d is not None else "-"
        if r.hops and len(r.hops) > 1:
            route += " → " + " → ".join(r.hops[1:])
        answer = r.error if not r.ok else _short(r.output, 60)
        table.add_row(text, route, _status(r.status.value), Text(answer or ""))
    out.print(table)

    shown = results[pack.DEMO_REQUESTS.index(pack.DEMO_TRACE)]
    with TraceStore(db) as store:
        out.print(Text("the trace of one request (swarm traces show TASK_ID):", style="bold"))
        out.print(TaskTree(store.task_tree(shown.task_id)))
    out.rule("next")
    out.print(
        f'swarm run "where is my order A200" --agents {EXAMPLE}   # one request\n'
        "swarm traces                                                  # what just ran\n"
        'swarm router explain "I was charged twice"                    # why it went there'
    )
