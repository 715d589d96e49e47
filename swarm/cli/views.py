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
    Column,
    DecisionView,
    FittedTable,
    ResultView,
    TaskTree,
    _short,
    _status,
    _when,
)

__all__ = [
    "Column",
    "DecisionView",
    "FittedTable",
    "ResultView",
    "RunsTable",
    "TaskTree",
    "TasksTable",
]


def _took(start: float | None, end: float | None) -> str:
    if start is None:
        return "-"
    if end is None:
        return "unfinished"
    seconds = end - start
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class RunsTable:
    """Recent runs. At 80 columns the kind and task count fold under the run id, the time it
    took under the start, the agents module under the router version."""

    COLUMNS = (
        Column("run", keep=9, style="cyan"),
        Column("kind", keep=1, fold_into="run"),
        Column("started", keep=7),
        Column("took", keep=2, fold_into="started", justify="right"),
        Column("tasks", keep=3, fold_into="run", justify="right"),
        Column("agents", keep=0, fold_into="router"),
        Column("router", keep=8),
    )

    def __init__(self, runs: Iterable[dict[str, Any]]) -> None:
        self.runs = list(runs)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        rows = [
            {
                "run": r["id"],
                "kind": r["kind"],
                "started": _when(r["started_at"]),
                "took": _took(r["started_at"], r["finished_at"]),
                "tasks": str(r.get("tasks", "")),
                "agents": r["agents"] or "-",
                "router": r["router_version"] or "-",
            }
            for r in self.runs
        ]
        yield FittedTable("runs", self.COLUMNS, rows)


class TasksTable:
    """Tasks, newest first. At 80 columns the output or error folds under the text."""

    COLUMNS = (
        Column("task", keep=9, style=""),
        Column("status", keep=8),
        Column("agent", keep=7),
        Column("text", keep=6, wrap=True),
        Column("output / error", keep=2, fold_into="text", wrap=True),
    )

    def __init__(self, tasks: Iterable[dict[str, Any]], title: str = "tasks") -> None:
        self.tasks = list(tasks)
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.tasks:
            yield Text("no tasks", style="grey50")
            return
        rows = []
        for t in self.tasks:
            detail = t["error"] if t["error"] else _short(t["output"], 40) if t["output"] else ""
            rows.append(
                {
                    "task": t["id"],
                    "status": _status(t["status"]),
                    "agent": t["agent"] or "-",
                    "text": _short(t["text"], 40),
                    "output / error": _short(detail, 80),
                }
            )
        yield FittedTable(self.title, self.COLUMNS, rows)


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


VERSION_COLUMNS = (
    Column("", keep=9),
    Column("version (created)", keep=8),
    Column("from", keep=2, fold_into="version (created)"),
    Column("held-out acc.", keep=6, justify="right"),
    Column("promotion", keep=5, wrap=True),
)


def versions_table(manifests: Iterable[dict[str, Any]], serving: str | None) -> FittedTable:
    """The router versions, `*` on the serving one; at 80 columns the parent folds under each."""
    rows: list[dict[str, str | Text]] = []
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
        rows.append(
            {
                "": "*" if m["version"] == serving else "",
                "version (created)": Text(
                    m["version"], style="bold" if m["version"] == serving else ""
                ),
                "from": m.get("parent") or "-",
                "held-out acc.": "-" if held_out is None else f"{held_out:.4f}",
                "promotion": verdict,
            }
        )
    return FittedTable("router versions", VERSION_COLUMNS, rows)
