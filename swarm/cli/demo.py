"""`swarm demo [NAME]`: run an installed demo pack (entry points `swarm.demos`): its requests with
their decisions, results and one trace, or its scenario suites with the summary and HTML report.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from swarm.agents import AgentRegistry, Pack, installed_demos, load_demo
from swarm.cli.common import DB_OPTION, MODELS_OPTION, load_router, make_console, progress_bars
from swarm.errors import ConfigError
from swarm.trace import TraceStore
from swarm.views import TaskTree, _short, _status

__all__ = ["DEFAULT_DEMO", "default_demo", "demo", "run_demo"]

DEFAULT_DEMO = "bank"
"""What `swarm demo` runs without a name, when installed (the README's main job)."""
EXAMPLES_HINT = "install the examples: pip install -e examples (in a checkout; `make setup` does)"


@click.command()
@click.argument("name", required=False)
@DB_OPTION
@click.option("--router", "router_spec", default="auto", show_default=True)
@MODELS_OPTION
@click.option(
    "--report",
    "report_path",
    default=None,
    help="Where a suites demo writes its HTML report [default: storage/reports/NAME.html].",
)
@click.option("--quickstart", is_flag=True, help="The same as `swarm demo quickstart`.")
@click.option("--list", "list_only", is_flag=True, help="List the installed demos and exit.")
def demo(
    name: str | None,
    db: str,
    router_spec: str,
    models_dir: str,
    report_path: str | None,
    quickstart: bool,
    list_only: bool,
) -> None:
    """Run an installed demo: NAME from `swarm demo --list`; by default the bank (its customer and
    engineering desks on BANKING77, end to end).

    A demo that lists requests sends them and shows the decisions, results and one trace; one with
    suites seeds what it needs, trains the router if none matches (a second run reuses it), runs
    the suites, prints the summary and writes the HTML report.
    """
    out = make_console()
    if list_only:
        _list(out)
        return
    if quickstart:
        if name not in (None, "quickstart"):
            raise click.UsageError("--quickstart runs the quickstart demo; pass no other NAME")
        name = "quickstart"
    pack = load_demo(name or default_demo())
    report = report_path or f"storage/reports/{pack.name}.html"
    passed = run_demo(pack, out, db, models_dir, report, router_spec=router_spec)
    sys.exit(0 if passed else 1)


def default_demo() -> str:
    """`DEFAULT_DEMO` when installed, else the only installed demo. Raises ConfigError otherwise."""
    demos = installed_demos()
    if DEFAULT_DEMO in demos:
        return DEFAULT_DEMO
    if len(demos) == 1:
        return next(iter(demos))
    if not demos:
        raise ConfigError(f"no demo installed (entry points `swarm.demos`): {EXAMPLES_HINT}")
    raise ConfigError(f"several demos installed, name one: {', '.join(demos)}")


def _list(out: Console) -> None:
    demos = installed_demos()
    if not demos:
        out.print(f"no demo installed: {EXAMPLES_HINT}")
        return
    table = Table(title="demos (swarm demo NAME)", title_justify="left")
    for col in ("name", "pack", "about"):
        table.add_column(col)
    for name, value in demos.items():
        table.add_row(name, value, load_demo(name).description)
    out.print(table)


def run_demo(
    pack: Pack,
    out: Console,
    db_url: str,
    models_dir: str | Path,
    report_path: str | Path,
    *,
    router_spec: str = "auto",
    router: Any = None,
    suites: list[Path] | None = None,
) -> bool:
    """Run `pack`'s demo, printing to `out`; True when every request finished and every suite
    passed. `router` skips loading one (tests pass a fake); `suites` replaces the pack's own."""
    registry = AgentRegistry()
    registry.add_pack(pack)
    where = f" from {pack.module}" if pack.module else ""
    out.rule(f"[bold]swarm demo[/bold] · {pack.name}: {len(registry)} agents{where}")
    if pack.demo_setup is not None:
        said = pack.demo_setup()
        if said:
            out.print(said)
    if router is None:
        start = time.perf_counter()
        with progress_bars(out) as progress:
            router = load_router(router_spec, registry, str(models_dir), out, progress=progress)
        out.print(
            f"router {getattr(router, 'version', '?')} ready in {time.perf_counter() - start:.1f}s"
        )
    if pack.demo_requests:
        return _requests(pack, registry, router, out, db_url, router_spec)
    files = suites if suites is not None else _suite_files(pack)
    if not files:
        raise ConfigError(f"pack {pack.name!r} has no demo requests and no suites to run")
    return _suites(pack, files, router, out, db_url, models_dir, report_path)


def _suite_files(pack: Pack) -> list[Path]:
    if pack.suites is None:
        return []
    return sorted(p for pattern in ("*.yaml", "*.yml") for p in pack.suites.glob(pattern))


def _suites(
    pack: Pack,
    files: list[Path],
    router: Any,
    out: Console,
    db_url: str,
    models_dir: str | Path,
    report_path: str | Path,
) -> bool:
    from swarm.scenarios import ScenarioRunner, load_suites, write_html
    from swarm.scenarios.runner import default_router_factory
    from swarm.scenarios.views import ReportView

    loaded = load_suites(files)
    other = default_router_factory(models_dir, console=out)

    def router_for(spec: str, registry: Any) -> Any:
        # The demo's router where a suite asks for the learned one; a suite that names another
        # (`router: keyword`) gets that, as `swarm test` would give it.
        return router if spec in ("auto", "") else other(spec, registry)

    runner = ScenarioRunner(router_factory=router_for, db=db_url, models_dir=models_dir)
    report = runner.run_sync(loaded.suites, load_errors=loaded.errors)
    out.print(ReportView(report))
    out.print(f"report written to {write_html(report, report_path)}")
    module = pack.module or "MODULE"
    out.rule("next")
    out.print(
        f"swarm console --agents {module}                   # talk to the same swarm\n"
        f'swarm run "{_first_request(pack)}" --agents {module}\n'
        "swarm traces                                                # what just ran"
    )
    return report.passed


def _first_request(pack: Pack) -> str:
    for a in pack.agent_list():
        if a.examples:
            return str(a.examples[0])
    return "hello"


def _requests(
    pack: Pack, registry: AgentRegistry, router: Any, out: Console, db: str, router_spec: str
) -> bool:
    from swarm.swarm import Swarm

    swarm = Swarm(
        registry,
        router=router,
        db=db,
        run_kind="demo",
        run_meta={"agents": pack.module, "router": router_spec},
    )

    async def go() -> list[Any]:
        async with swarm:
            handles = [await swarm.submit(text, session="demo") for text in pack.demo_requests]
            return [await h for h in handles]

    results = asyncio.run(go())
    table = Table(title="requests", title_justify="left")
    for col, ratio in (("request", 3), ("route", 3), ("status", 1), ("answer", 4)):
        table.add_column(col, ratio=ratio)
    for text, r in zip(pack.demo_requests, results, strict=True):
        d = r.decision
        route = d.reason if d is not None else "-"
        if r.hops and len(r.hops) > 1:
            route += " → " + " → ".join(r.hops[1:])
        answer = r.error if not r.ok else _short(r.output, 60)
        table.add_row(text, route, _status(r.status.value), Text(answer or ""))
    out.print(table)

    if pack.demo_trace is not None:
        shown = results[list(pack.demo_requests).index(pack.demo_trace)]
        with TraceStore(db) as store:
            out.print(Text("the trace of one request (swarm traces show TASK_ID):", style="bold"))
            out.print(TaskTree(store.task_tree(shown.task_id)))
    module = pack.module or "MODULE"
    out.rule("next")
    out.print(
        f'swarm run "{pack.demo_requests[0]}" --agents {module}   # one request\n'
        "swarm traces                                                  # what just ran\n"
        f"swarm console --agents {module}                   # talk to the same swarm"
    )
    return True
