"""`swarm test`, `swarm replay` and `swarm diff`: run scenario suites, replay a recorded run with
its recorded LLM and tool answers, compare two runs. Thin: the work is in `swarm.scenarios`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from swarm.cli.common import (
    DB_OPTION,
    MODELS_OPTION,
    importable_cwd,
    llm_from_env,
    load_router,
    make_console,
)

__all__ = ["COMMANDS", "diff", "replay", "test"]


def _router_factory(models_dir: str, out: Any) -> Any:
    return lambda spec, registry: load_router(spec, registry, models_dir, out)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-k", "keyword", default=None, help="Only scenarios matching (words, and/or/not).")
@click.option(
    "--tags", multiple=True, help="Only scenarios with one of these tags (repeat or a,b)."
)
@click.option(
    "--router",
    "router_spec",
    default=None,
    help="auto, keyword or a router artifact folder; default: each suite's `router:`, else auto.",
)
@MODELS_OPTION
@DB_OPTION
@click.option("--junit", "junit", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write HTML here.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
def test(
    paths: tuple[str, ...],
    keyword: str | None,
    tags: tuple[str, ...],
    router_spec: str | None,
    models_dir: str,
    db: str,
    junit: str | None,
    report_path: str | None,
    as_json: bool,
) -> None:
    """Run the scenario suites in PATHS (YAML files or folders); exit 1 if any scenario fails."""
    from swarm.scenarios import (
        ScenarioRunner,
        load_suites,
        select_scenarios,
        write_html,
        write_junit,
    )
    from swarm.scenarios.views import ReportView

    out = make_console()
    importable_cwd()
    select = select_scenarios(keyword, tags)
    loaded = load_suites(paths)
    total = sum(1 for s in loaded.suites for sc in s.expanded() if select(s, sc))
    progress = Progress(
        TextColumn("[bold]scenarios"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed", style="red"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=as_json,
    )
    bar = progress.add_task("run", total=total, failed=0)
    failed = 0

    def tick(result: Any) -> None:
        nonlocal failed
        failed += not result.passed
        progress.update(bar, advance=1, failed=failed)
        if not result.passed and not as_json:
            progress.console.print(f"[red]FAIL[/red] {result.id}")

    runner = ScenarioRunner(
        router=router_spec,
        router_factory=_router_factory(models_dir, out),
        db=db,
        llm=llm_from_env(),
        on_scenario=tick,
    )
    with progress:
        report = runner.run_sync(loaded.suites, select, loaded.errors)
    if junit:
        write_junit(report, junit)
    if report_path:
        write_html(report, report_path)
    if as_json:
        click.echo(json.dumps(_report_json(report), default=str))
    else:
        out.print(ReportView(report))
        for label, path in (("JUnit XML", junit), ("report", report_path)):
            if path:
                out.print(f"[grey50]{label}: {path}[/grey50]")
    if not report.passed:
        sys.exit(1)


def _report_json(report: Any) -> dict[str, Any]:
    from swarm.scenarios import Metrics

    m = Metrics.of(report.steps)
    return {
        "passed": report.passed,
        "counts": report.counts,
        "load_errors": report.load_errors,
        "routing_accuracy": m.accuracy,
        "latency_ms": {"p50": m.p50, "p95": m.p95},
        "suites": [
            {
                "name": s.name,
                "file": s.file,
                "router": s.router,
                "router_version": s.router_version,
                "run_id": s.run_id,
                "error": s.error,
                "scenarios": [
                    {"name": sc.name, "passed": sc.passed, "reasons": sc.reasons}
                    for sc in s.scenarios
                ],
            }
            for s in report.suites
        ],
    }


@click.command()
@click.argument("run_id")
@click.option("--agents", "agents_spec", default=None, help="Default: the module the run used.")
@click.option("--router", "router_spec", default=None, help="Default: the router the run used.")
@MODELS_OPTION
@DB_OPTION
@click.option("--live-tools", is_flag=True, help="Call tools that have no recording.")
@click.option(
    "--save-suite",
    "suite_path",
    type=click.Path(dir_okay=False),
    help="Write the recorded run as a scenario suite (YAML) instead of replaying it.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
def replay(
    run_id: str,
    agents_spec: str | None,
    router_spec: str | None,
    models_dir: str,
    db: str,
    live_tools: bool,
    suite_path: str | None,
    as_json: bool,
) -> None:
    """Re-run RUN_ID's tasks through today's router and agents with its recorded LLM and tool
    answers; show what changed. Exit 1 when anything changed other than failures now fixed."""
    from swarm.scenarios import replay_run, save_suite
    from swarm.scenarios.views import DiffView
    from swarm.trace import TraceStore

    out = make_console()
    importable_cwd()
    with TraceStore(db) as store:
        if suite_path:
            path = save_suite(store, run_id, suite_path)
            if as_json:
                click.echo(json.dumps({"suite": str(path)}))
            else:
                out.print(
                    f"saved run {run_id} as a suite: {path} (run it with `swarm test {path}`)"
                )
            return
        outcome = asyncio.run(
            replay_run(
                store,
                run_id,
                agents=agents_spec,
                router=router_spec,
                router_factory=_router_factory(models_dir, out),
                live_tools=live_tools,
            )
        )
    if as_json:
        click.echo(json.dumps({"run_id": outcome.run_id, **outcome.diff.to_dict()}, default=str))
    else:
        out.print(DiffView(outcome.diff))
        out.print(
            f"[grey50]replay recorded as run {outcome.run_id} · {outcome.tools_served} tool "
            f"outputs and {outcome.llm_recordings} LLM answers from the recording[/grey50]"
        )
        for note in outcome.notes:
            out.print(f"[yellow]{note}[/yellow]")
    if outcome.diff.regressed:
        sys.exit(1)


@click.command()
@click.argument("run_a")
@click.argument("run_b")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last line.")
def diff(run_a: str, run_b: str, db: str, as_json: bool) -> None:
    """Compare two recorded runs: tasks routed differently, outputs that differ, new failures."""
    from swarm.scenarios import diff_runs
    from swarm.scenarios.views import DiffView
    from swarm.trace import TraceStore

    with TraceStore(db) as store:
        result = diff_runs(store, run_a, run_b)
    if as_json:
        click.echo(json.dumps(result.to_dict(), default=str))
    else:
        make_console().print(DiffView(result))
    if result.regressed:
        sys.exit(1)


COMMANDS: list[click.Command] = [test, replay, diff]
