"""Rich renderables for the CLI and the console: a decision, a result, a task tree, runs, tasks.

Each view is an object with `__rich_console__`, so tests print it into a fixed-width Console.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from swarm.models import Decision, Result, TaskStatus

__all__ = ["DecisionView", "ResultView", "RunsTable", "TaskTree", "TasksTable"]

_STATUS_STYLE = {
    "done": "green",
    "failed": "red",
    "cancelled": "yellow",
    "rejected": "magenta",
    "queued": "cyan",
    "running": "blue",
}


def _status(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class DecisionView:
    """The router's choice: the candidates with their calibrated confidence as bars."""

    def __init__(self, decision: Decision, bar_width: int = 24) -> None:
        self.decision = decision
        self.bar_width = bar_width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        d = self.decision
        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right")
        table.add_column()
        table.add_column(justify="right")
        for name, p in d.candidates:
            filled = round(p * self.bar_width)
            bar = Text("█" * filled, style="green" if name == d.agent else "grey50")
            bar.append("·" * (self.bar_width - filled), style="grey23")
            table.add_row(name, bar, f"{p:.2f}")
        style = {"routed": "green", "forced": "blue", "ambiguous": "yellow"}.get(
            d.status, "magenta"
        )
        title = Text.assemble(("route ", "bold"), (d.reason, style))
        subtitle = f"router {d.version or '?'} · {d.latency_ms:.1f} ms"
        yield Panel(
            table if d.candidates else Text("no candidates"), title=title, subtitle=subtitle
        )


class ResultView:
    def __init__(self, result: Result) -> None:
        self.result = result

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        r = self.result
        if r.status is TaskStatus.DONE:
            out = r.output
            body: Any = Text(
                out if isinstance(out, str) else json.dumps(out, indent=2, default=repr)
            )
        else:
            body = Text(r.error or r.status.value, style=_STATUS_STYLE.get(r.status.value, ""))
        hops = " → ".join(r.hops) if r.hops else "no agent"
        title = Text.assemble(("result ", "bold"), _status(r.status.value))
        subtitle = f"{hops} · attempts {r.attempts} · task {r.task_id}"
        yield Panel(body, title=title, subtitle=subtitle)


class TaskTree:
    """A task with its routing decision, spans and children, as `TraceStore.task_tree` gives it."""

    def __init__(self, node: dict[str, Any]) -> None:
        self.node = node

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._tree(self.node)

    def _label(self, node: dict[str, Any]) -> Text:
        took = ""
        if node.get("started_at") and node.get("finished_at"):
            took = f" {1000 * (node['finished_at'] - node['started_at']):.1f} ms"
        return Text.assemble(
            ("task ", "bold"),
            (node["id"], "cyan"),
            " ",
            _status(node["status"]),
            f" {node.get('agent') or '-'}{took}  ",
            (_short(node["text"], 50), "italic"),
        )

    def _tree(self, node: dict[str, Any]) -> Tree:
        tree = Tree(self._label(node))
        d = node.get("decision")
        if d:
            cands = ", ".join(f"{a} {p:.2f}" for a, p in (d.get("candidates") or [])[:3])
            tree.add(
                Text.assemble(
                    ("route ", "bold"),
                    f"{d['status']} → {d['agent'] or 'none'} ({d['confidence']:.2f})",
                    (f"  [{cands}]" if cands else "", "grey50"),
                    (f"  {d['router_version'] or ''} {d['latency_ms']:.1f} ms", "grey50"),
                )
            )
        spans = node.get("spans") or []
        by_parent: dict[str | None, list[dict[str, Any]]] = {}
        for s in spans:
            by_parent.setdefault(s["parent_id"], []).append(s)

        def add_spans(branch: Tree, parent: str | None) -> None:
            for s in by_parent.get(parent, []):
                took = (
                    f"{1000 * (s['ended_at'] - s['started_at']):.1f} ms"
                    if s["ended_at"]
                    else "open"
                )
                label = Text.assemble(
                    (f"{s['kind']} ", "bold"),
                    s["name"],
                    f" {took}",
                    (f" {s['status']}", "red" if s["status"] != "ok" else "grey50"),
                    (f" {_short(s['error'], 60)}" if s.get("error") else "", "red"),
                )
                item = branch.add(label)
                tb = (s.get("attributes") or {}).get("traceback")
                if tb:  # where the agent raised: kept on its failed attempt
                    item.add(Text(str(tb).rstrip(), style="red"))
                add_spans(item, s["id"])

        add_spans(tree, None)
        if node.get("status") in ("failed", "rejected", "cancelled") and node.get("error"):
            tree.add(Text(f"error: {node['error']}", style="red"))
        elif node.get("output") is not None:
            tree.add(Text.assemble(("output ", "bold"), _short(node["output"], 80)))
        for child in node.get("children") or []:
            tree.add(self._tree(child))
        return tree


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
