"""The console's own renderables: help, the agents table, the routing note under a decision, this
session's history, and old-versus-new router metrics after `/retrain`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from swarm.console.commands import COMMANDS
from swarm.models import Decision, short_id
from swarm.views import Column, FittedTable, _short, _status

__all__ = [
    "AgentsTable",
    "HelpView",
    "HistoryTable",
    "RetrainView",
    "RoutingNote",
    "WaitingNote",
    "Welcome",
]


class Welcome:
    def __init__(self, agents: int, router: str, session_id: str, history: str | None) -> None:
        self.agents, self.router, self.session_id, self.history = (
            agents,
            router,
            session_id,
            history,
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text.assemble(
            ("swarm console", "bold"),
            f" · {self.agents} agents · router {self.router} · session {self.session_id}",
        )
        yield Text(
            "Type a request, or /help for the commands. Ctrl-C cancels a request, Ctrl-D leaves.",
            style="grey50",
        )


class WaitingNote:
    """A request that waits for a person: the question, and how to answer it."""

    def __init__(self, data: dict[str, Any], node: Any = None) -> None:
        self.data, self.node = data, node

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        ref = short_id(self.data["approval_id"])
        who = self.data.get("agent") or (self.node.agent if self.node is not None else None)
        yield Text.assemble(
            ("⏸ ", "bold yellow"),
            (f"{who or 'the agent'} asks: ", "bold"),
            self.data["question"],
        )
        yield Text(
            f"  approval {ref}: /approve {ref} or /deny {ref} (a note may follow); the prompt is "
            "yours meanwhile",
            style="yellow",
        )


class HelpView:
    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        table.add_row("TEXT", "a request: routed, run, traced")
        for c in COMMANDS:
            table.add_row(c.usage, c.help)
        yield table


class AgentsTable:
    """Each agent with its description, how many examples teach the router, and its limits."""

    def __init__(self, agents: Iterable[Any]) -> None:
        self.agents = list(agents)

    COLUMNS = (
        Column("agent", keep=9, style="bold"),
        Column("description", keep=8, wrap=True),
        Column("examples", keep=5, justify="right"),
        Column("concurrency", keep=3, fold_into="examples", justify="right"),
        Column("timeout", keep=2, fold_into="examples", justify="right"),
        Column("retries", keep=1, fold_into="examples", justify="right"),
    )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        rows = [
            {
                "agent": a.name,
                "description": a.description or "-",
                "examples": str(len(a.examples)),
                "concurrency": str(a.max_concurrency),
                "timeout": "none" if a.timeout is None else f"{a.timeout:g}s",
                "retries": str(a.retries),
            }
            for a in self.agents
        ]
        yield FittedTable("agents", self.COLUMNS, rows)


class RoutingNote:
    """The line under a decision that says what a person can do about it."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        d = self.decision
        if d.ambiguous and len(d.candidates) >= 2:
            a, b = d.candidates[0][0], d.candidates[1][0]
            yield Text.assemble(
                ("ambiguous", "bold yellow"),
                f", did you mean {a} or {b}? ",
                (f"/route {a} or /route {b} sends it there", "grey50"),
            )
        elif d.out_of_scope:
            yield Text.assemble(
                ("out of scope", "bold magenta"),
                ": none of the agents should take this. ",
                ("/route AGENT sends it to one anyway (and teaches the router)", "grey50"),
            )


class HistoryTable:
    """This session's requests (root tasks), oldest first."""

    HISTORY_COLUMNS = (
        Column("#", keep=1, justify="right"),
        Column("task", keep=9),
        Column("status", keep=7),
        Column("agent", keep=6),
        Column("request", keep=8, wrap=True),
    )

    def __init__(self, tasks: Sequence[dict[str, Any]], history_file: str | None = None) -> None:
        self.tasks = list(tasks)
        self.history_file = history_file

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.tasks:
            yield Text("no requests in this session yet", style="grey50")
        else:
            rows = [
                {
                    "#": str(i),
                    "task": t["id"],
                    "status": _status(t["status"]),
                    "agent": t["agent"] or t.get("forced_agent") or "-",
                    "request": _short(t["text"], 50),
                }
                for i, t in enumerate(self.tasks, start=1)
            ]
            yield FittedTable("this session", self.HISTORY_COLUMNS, rows)
        if self.history_file:
            yield Text(
                f"earlier sessions: ↑ recalls their lines (kept in {self.history_file})",
                style="grey50",
            )


@dataclass(frozen=True)
class CaseRow:
    text: str
    label: str
    old: str
    new: str


def _fmt(value: float | None, *, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1%}" if percent else f"{value:.3f}"


class RetrainView:
    """Old and new router side by side on the same held-out set, the labelled cases, the verdict."""

    def __init__(
        self,
        old: Any,
        new: Any,
        cases: Sequence[CaseRow],
        *,
        switched: bool,
        held_out: int,
        trained_on: int,
        note: str = "",
    ) -> None:
        self.old, self.new, self.cases = old, new, list(cases)
        self.switched, self.held_out, self.trained_on, self.note = (
            switched,
            held_out,
            trained_on,
            note,
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        o, n = self.old, self.new
        table = Table(title=f"held-out evaluation ({self.held_out} examples)", title_justify="left")
        table.add_column("metric")
        table.add_column(f"old {o.version}", justify="right")
        table.add_column(f"new {n.version}", justify="right")
        rows: list[tuple[str, float | None, float | None, bool]] = [
            ("accuracy", o.accuracy, n.accuracy, True),
            ("macro-F1", o.macro_f1, n.macro_f1, False),
            ("in-scope accuracy", o.in_scope_accuracy, n.in_scope_accuracy, True),
            ("out-of-scope recall", o.oos_recall, n.oos_recall, True),
            ("calibration error (ECE)", o.ece, n.ece, False),
        ]
        for name, a, b, percent in rows:
            if a is None and b is None:
                continue
            table.add_row(name, _fmt(a, percent=percent), _fmt(b, percent=percent))
        if self.cases:
            right_old = sum(c.old == c.label for c in self.cases)
            right_new = sum(c.new == c.label for c in self.cases)
            table.add_row(
                "labelled cases right",
                f"{right_old}/{len(self.cases)}",
                f"{right_new}/{len(self.cases)}",
            )
        yield table
        if self.cases:
            cases = Table(title="cases people labelled", title_justify="left", show_edge=False)
            cases.add_column("request")
            cases.add_column("wanted")
            cases.add_column("old")
            cases.add_column("new")
            for c in self.cases:
                cases.add_row(
                    _short(c.text, 44),
                    c.label,
                    Text(c.old, style="green" if c.old == c.label else "red"),
                    Text(c.new, style="green" if c.new == c.label else "red"),
                )
            yield cases
        if self.note:
            yield Text(self.note, style="grey50")
        if self.switched:
            yield Text.assemble(
                ("switched", "bold green"),
                f": router {n.version} now serves (trained on {self.trained_on} examples); "
                f"roll back with `swarm router use {o.version}`",
            )
        else:
            yield Text.assemble(
                ("kept", "bold yellow"),
                f" router {o.version}: the new one is worse on the held-out set "
                f"({n.accuracy:.1%} vs {o.accuracy:.1%}); it was kept beside, not serving "
                f"(`swarm router use {n.version}` serves it anyway)",
            )
