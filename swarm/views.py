"""Rich renderables the CLI and the console share: a decision, a result, a task tree, and training
progress bars. Each view is an object with `__rich_console__`, so tests print it into a
fixed-width Console.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from swarm.models import Decision, Result, TaskStatus, short_id

__all__ = [
    "ApprovalsTable",
    "Column",
    "DecisionView",
    "FittedTable",
    "ResultView",
    "TaskTree",
    "progress_bars",
]

_STATUS_STYLE = {
    "done": "green",
    "failed": "red",
    "cancelled": "yellow",
    "rejected": "magenta",
    "queued": "cyan",
    "running": "blue",
    "waiting": "bold yellow",
    "approved": "green",
    "denied": "red",
    "expired": "grey50",
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
                    (f"  rule {d['rule']}" if d.get("rule") else "", "grey50"),
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


# ---- tables that fit the terminal -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a `FittedTable`: how it shows, and what happens to it when the width is short.

    `keep`: the higher, the longer it stays as a column of its own. `fold_into`: the header of
    the column whose cells take this one's value as a second line when there is no room for it
    (else it is left out). `wrap`: free text that may wrap over lines; every other column is one
    line that is never cut (ids, versions and times are copied from here).
    """

    header: str
    keep: int = 0
    fold_into: str | None = None
    wrap: bool = False
    justify: Literal["left", "right"] = "left"
    style: str = ""


_WRAP_MIN = 20  # the narrowest a free-text column may get: three or four words a line


class FittedTable:
    """A table that stays readable however narrow the terminal: columns that do not fit fold
    into another column as a second line (grey), or are left out, lowest `keep` first; no column
    is ever squeezed to nothing and no id is ever cut.

    `rows`: one mapping per row, header -> cell (str or Text).
    """

    def __init__(
        self,
        title: str,
        columns: Sequence[Column],
        rows: Iterable[Mapping[str, str | Text]],
    ) -> None:
        self.title, self.columns, self.rows = title, list(columns), [dict(r) for r in rows]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.fit(options.max_width)

    def fit(self, width: int) -> Table:
        """The table for `width` cells: what shows as a column, what folds, what is left out."""
        shown = {c.header: c for c in self.columns}
        folded: dict[str, list[Column]] = {}
        by_keep = sorted(self.columns, key=lambda c: c.keep)
        for c in by_keep:  # first fold what can fold, least valuable first
            if self._width(shown, folded) <= width:
                break
            if c.fold_into in shown and c.header in shown and len(shown) > 1:
                del shown[c.header]
                guests = folded.setdefault(c.fold_into, [])
                guests.append(c)
                guests.sort(key=self.columns.index)  # shown in the order they were declared
        for c in by_keep:  # then leave out what still does not fit
            if self._width(shown, folded) <= width:
                break
            for guests in folded.values():
                if c in guests:
                    guests.remove(c)
                    break
            else:
                if c.header in shown and len(shown) > 1:
                    del shown[c.header]
                    folded.pop(c.header, None)
        return self._table(shown, folded)

    def _cells(self, column: Column, guests: Sequence[Column]) -> list[Text]:
        """The header and each row's cell as the column shows them: its own value, then its
        guests' values on one grey line with ` · ` between them."""
        head = Text(column.header)
        if guests:
            head.append("\n" + " · ".join(g.header for g in guests), style="grey50")
        out = [head]
        for row in self.rows:
            cell = _text(row.get(column.header, ""))
            extra = Text(" · ").join(_text(row.get(g.header, "")) for g in guests)
            if extra.plain.strip(" ·"):
                extra.stylize("grey50")
                cell = Text.assemble(cell, "\n", extra)
            out.append(cell)
        return out

    def _cell_width(self, column: Column, guests: Sequence[Column]) -> int:
        lines = [line for cell in self._cells(column, guests) for line in cell.plain.splitlines()]
        widest = max((cell_len(line) for line in lines), default=0)
        if column.wrap and all(g.wrap for g in guests):
            return min(widest, _WRAP_MIN)  # free text wraps; narrower than this it reads badly
        return widest

    def _width(self, shown: Mapping[str, Column], folded: Mapping[str, list[Column]]) -> int:
        # show_edge=False: one cell of padding each side, one separator between columns
        cells = sum(self._cell_width(c, folded.get(h, [])) for h, c in shown.items())
        return cells + 3 * len(shown) - 1

    def _table(self, shown: Mapping[str, Column], folded: Mapping[str, list[Column]]) -> Table:
        table = Table(title=self.title, title_justify="left", show_edge=False)
        columns = [self._cells(c, folded.get(h, [])) for h, c in shown.items()]
        for (header, c), cells in zip(shown.items(), columns, strict=True):
            wrap = c.wrap and all(g.wrap for g in folded.get(header, []))
            table.add_column(
                cells[0], justify=c.justify, style=c.style, no_wrap=not wrap, overflow="fold"
            )
        for i in range(len(self.rows)):
            table.add_row(*(cells[i + 1] for cells in columns))
        return table


def _text(value: str | Text) -> Text:
    return value.copy() if isinstance(value, Text) else Text(value)


class ApprovalsTable:
    """Approvals (`TraceStore.approvals`): the short id people type (`/approve ID`, `swarm
    approve ID`), the task, the question, and who decided what (or since when it waits)."""

    COLUMNS = (
        Column("approval", keep=9),
        Column("status", keep=8),
        Column("question", keep=7, wrap=True),
        Column("task", keep=5),
        Column("agent", keep=3, fold_into="question"),
        Column("asked / decided", keep=2, fold_into="question"),
    )

    def __init__(self, approvals: Iterable[Mapping[str, Any]], title: str = "approvals") -> None:
        self.approvals = list(approvals)
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.approvals:
            yield Text("no approvals", style="grey50")
            return
        rows = []
        for a in self.approvals:
            if a["status"] == "waiting":
                expires = a.get("expires_at")
                when = f"asked {_when(a['created_at'])}"
                if expires is not None:
                    # Past it, nobody runs the task now: it expires when it is resumed.
                    ran_out = expires <= dt.datetime.now().timestamp()
                    when += f", {'ran out' if ran_out else 'expires'} {_when(expires)}"
            else:
                by = f" by {a['decided_by']}" if a.get("decided_by") else ""
                note = f": {a['note']}" if a.get("note") else ""
                when = f"{a['status']}{by} {_when(a.get('decided_at'))}{note}"
            rows.append(
                {
                    "approval": short_id(a["id"]),
                    "status": _status(a["status"]),
                    "question": a["question"],
                    "task": short_id(a["task_id"]),
                    "agent": a.get("agent") or "-",
                    "asked / decided": when,
                }
            )
        yield FittedTable(self.title, self.COLUMNS, rows)
