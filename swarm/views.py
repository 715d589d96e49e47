"""Rich renderables the CLI and the console share: a decision, a result, a task tree, and training
progress bars. Each view is an object with `__rich_console__`, so tests print it into a
fixed-width Console.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from swarm.models import Decision, Result, TaskStatus

__all__ = ["DecisionView", "ResultView", "TaskTree", "progress_bars"]

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


@contextmanager
def progress_bars(
    console: Console, enabled: bool = True
) -> Iterator[Callable[[str, int], Callable[[int], None]] | None]:
    """A factory of transient rich bars (for encoding and training), or None when bars would only
    clutter: JSON output, or not a terminal."""
    if not enabled or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bars:

        def make(description: str, total: int) -> Callable[[int], None]:
            task = bars.add_task(description, total=total)
            return lambda n: bars.advance(task, n)

        yield make
