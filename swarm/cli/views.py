"""Rich renderables for the CLI: runs, tasks, router versions, what feedback taught (the views
the console shares, a decision, a result and a task tree, live in `swarm.views`).

Each view is an object with `__rich_console__`, so tests print it into a fixed-width Console.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from swarm.views import (  # shared with the console; re-exported for older importers
    DecisionView,
    ResultView,
    TaskTree,
    _short,
    _status,
    _when,
)

__all__ = ["DecisionView", "ResultView", "RunsTable", "TaskTree", "TasksTable"]


class RunsTable:
    def __init__(self, runs: Iterable[dict[str, Any]]) -> None:
        self.runs = list(runs)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = Table(title="runs", title_justify="left")
        for col in ("run", "kind", "started", "finished", "tasks", "agents", "router"):
            table.add_column(col, no_wrap=col in ("run", "started", "finished"))
        for r in self.runs:
            table.add_row(
                r["id"],
                r["kind"],
                _when(r["started_at"]),
                _when(r["finished_at"]),
                str(r.get("tasks", "")),
                r["agents"] or "-",
                r["router_version"] or "-",
            )
        yield table


class TasksTable:
    def __init__(self, tasks: Iterable[dict[str, Any]], title: str = "tasks") -> None:
        self.tasks = list(tasks)
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = Table(title=self.title, title_justify="left")
        for col in ("task", "status", "agent", "text", "output / error"):
            table.add_column(col, no_wrap=col == "task", overflow="ellipsis")
        for t in self.tasks:
            detail = t["error"] if t["error"] else _short(t["output"], 40) if t["output"] else ""
            table.add_row(
                t["id"], _status(t["status"]), t["agent"] or "-", _short(t["text"], 40), detail
            )
        yield Group(table) if self.tasks else Text("no tasks", style="grey50")


# ---- router versions and learning from feedback ------------------------------------------------


def feedback_outcome_view(outcome: Any) -> Group:
    """What `swarm router train --feedback` learnt from, the metrics before and after, and
    whether the new version serves."""
    counts = outcome.feedback.counts()
    used = Table(title="feedback", show_edge=False)
    for column in ("good", "bad", "corrections", "contradictory texts", "skipped"):
        used.add_column(column, justify="right")
    used.add_row(
        str(counts["good"]),
        str(counts["bad"]),
        str(counts["corrections"]),
        str(counts["contradictory_texts"]),
        str(counts["skipped"]),
    )
    parts: list[Any] = [used]
    for contradiction in outcome.feedback.contradictions[:10]:
        parts.append(
            Text(
                f"contradictory, left out: “{contradiction.text}”: "
                + ", ".join(contradiction.verdicts),
                style="yellow",
            )
        )
    for reason, n in outcome.feedback.skipped.items():
        parts.append(Text(f"skipped {n}: {reason}", style="grey50"))
    gate = outcome.gate
    metrics = Table(title=f"held-out set ({gate.before.examples} texts)", show_edge=False)
    metrics.add_column("router")
    metrics.add_column("accuracy", justify="right")
    metrics.add_column("macro-F1", justify="right")
    metrics.add_column("ECE", justify="right")
    for name, report in (
        ("serving " + gate.before.version, gate.before),
        ("new " + outcome.router.version, gate.after),
    ):
        metrics.add_row(
            name, f"{report.accuracy:.4f}", f"{report.macro_f1:.4f}", f"{report.ece:.4f}"
        )
    parts.append(metrics)
    if outcome.contributions:
        parts.append(
            Text(
                "contributions (held-out accuracy, points): "
                + ", ".join(f"{k} {v:+.2f}" for k, v in outcome.contributions.items())
            )
        )
    if gate.promoted:
        parts.append(
            Text(
                f"promoted: router {outcome.router.version} now serves ({gate.reason})",
                style="green",
            )
        )
        parts.append(
            Text(f"roll back with `swarm router use {gate.before.version}`", style="grey50")
        )
    else:
        parts.append(Text(f"kept beside, not serving: {gate.reason}", style="yellow"))
        parts.append(
            Text(
                f"serve it anyway with `swarm router use {outcome.router.version}`", style="grey50"
            )
        )
    return Group(*parts)


def versions_table(manifests: Iterable[dict[str, Any]], serving: str | None) -> Table:
    table = Table(title="router versions", show_edge=False)
    table.add_column("")
    table.add_column("version (created)", no_wrap=True)
    table.add_column("from", no_wrap=True)
    table.add_column("held-out acc.", justify="right")
    table.add_column("promotion")
    for m in manifests:
        promotion = m.get("promotion")
        if promotion is None:
            held_out = m.get("metrics", {}).get("heldout_accuracy")
            verdict = Text("trained")
        else:
            held_out = promotion["after"]["accuracy"]
            change = (held_out - promotion["before"]["accuracy"]) * 100
            verdict = Text(
                f"{'promoted' if promotion['promoted'] else 'kept beside'} ({change:+.2f} pts)",
                style="green" if promotion["promoted"] else "yellow",
            )
        table.add_row(
            "*" if m["version"] == serving else "",
            Text(m["version"], style="bold" if m["version"] == serving else ""),
            m.get("parent") or "-",
            "-" if held_out is None else f"{held_out:.4f}",
            verdict,
        )
    return table
