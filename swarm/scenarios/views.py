"""Rich renderables for scenario runs and replays: the results table with each failure's reason,
routing accuracy per agent, the confusion between agents, latency, and what changed in a replay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from swarm.scenarios.metrics import Metrics
from swarm.scenarios.runner import TestReport

if TYPE_CHECKING:
    from swarm.scenarios.replay import RunDiff

__all__ = ["ConfusionTable", "DiffView", "ReportView", "ResultsTable", "RoutingTable"]


class ResultsTable:
    """One row per scenario: pass or fail, and why it failed."""

    def __init__(self, report: TestReport, *, only_failures: bool = False) -> None:
        self.report = report
        self.only_failures = only_failures

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = Table(title="scenarios", title_justify="left", expand=False)
        table.add_column("suite", style="cyan", no_wrap=True)
        table.add_column("scenario")
        table.add_column("result", no_wrap=True)
        table.add_column("ms", justify="right")
        table.add_column("reason")
        for s in self.report.scenarios:
            if self.only_failures and s.passed:
                continue
            mark = Text("pass", style="green") if s.passed else Text("FAIL", style="bold red")
            table.add_row(s.suite, s.name, mark, f"{s.duration_ms:.0f}", Text("\n".join(s.reasons)))
        yield table


class RoutingTable:
    """Routing accuracy per expected agent."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        m = self.metrics
        table = Table(title="routing accuracy", title_justify="left")
        table.add_column("agent", style="cyan")
        table.add_column("steps", justify="right")
        table.add_column("right", justify="right")
        table.add_column("accuracy", justify="right")
        for a in m.per_agent:
            style = "green" if a.correct == a.steps else ("yellow" if a.accuracy >= 0.8 else "red")
            table.add_row(a.agent, str(a.steps), str(a.correct), Text(f"{a.accuracy:.0%}", style))
        table.add_row(
            Text("all", style="bold"), str(m.labelled), str(m.correct), f"{m.accuracy:.0%}"
        )
        yield table


class ConfusionTable:
    """Rows: the agent a step expected; columns: what it got (the agent that took it, or why it
    was rejected). Too many agents for the width: one row per pair that occurred instead."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        m = self.metrics
        widest = max(len(label) for label in m.labels)
        # cells, plus the row-label column; 3 = padding each side and a rule between columns
        if (widest + 3) * (len(m.labels) + 1) + 1 > options.max_width:
            yield self._pairs()
            return
        table = Table(title="confusion (expected ↓ / got →)", title_justify="left")
        table.add_column("", style="cyan", no_wrap=True)
        for label in m.labels:
            table.add_column(label, justify="right", no_wrap=True)
        for exp in m.labels:
            cells = []
            for got in m.labels:
                n = m.confusion.get((exp, got), 0)
                style = "green" if exp == got and n else ("red" if n else "grey50")
                cells.append(Text(str(n) if n else "·", style=style))
            table.add_row(exp, *cells)
        yield table

    def _pairs(self) -> Table:
        m = self.metrics
        table = Table(title="confusion (steps not routed as expected)", title_justify="left")
        table.add_column("expected", style="cyan")
        table.add_column("got")
        table.add_column("steps", justify="right")
        wrong = sorted(
            ((e, g, n) for (e, g), n in m.confusion.items() if e != g), key=lambda x: -x[2]
        )
        for e, g, n in wrong:
            table.add_row(e, Text(g, style="red"), str(n))
        if not wrong:
            table.add_row(Text("every step went where expected", style="green"), "", "")
        return table


class ReportView:
    """The whole summary `swarm test` ends with."""

    def __init__(self, report: TestReport) -> None:
        self.report = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        r = self.report
        m = Metrics.of(r.steps)
        parts: list[object] = []
        for err in r.load_errors:
            parts.append(Text.assemble(("not loaded: ", "bold red"), err))
        for s in r.suites:
            if s.error:
                parts.append(Text.assemble((f"suite {s.name}: ", "bold red"), s.error))
        parts.append(ResultsTable(r))
        if m.labelled:
            parts.append(RoutingTable(m))
            if len(m.labels) > 1:
                parts.append(ConfusionTable(m))
        c = r.counts
        versions = sorted({f"{s.router} ({s.router_version or '?'})" for s in r.suites})
        runs = ", ".join(s.run_id for s in r.suites if s.run_id) or "not recorded"
        style = "bold green" if r.passed else "bold red"
        verdict = "passed" if r.passed else "FAILED"
        line = Text.assemble(
            (verdict, style),
            f" · {c['passed']}/{c['scenarios']} scenarios passed",
            f" · {c['load_errors']} files not loaded" if c["load_errors"] else "",
            f" · routing {m.accuracy:.0%} of {m.labelled} steps" if m.labelled else "",
            f"\nlatency p50 {m.p50:.0f} ms, p95 {m.p95:.0f} ms",
            f" · router {', '.join(versions) or '-'}",
            f" · {r.duration_ms / 1000:.1f} s",
        )
        parts.append(line)
        parts.append(Text(f"runs: {runs}  (swarm replay RUN_ID to replay one)", style="grey50"))
        yield Group(*parts)  # type: ignore[arg-type]


class DiffView:
    """What changed between a recorded run and its replay (or another run)."""

    def __init__(self, diff: RunDiff) -> None:
        self.diff = diff

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        d = self.diff
        title = f"{d.base_label} → {d.other_label}"
        if not d.changes:
            yield Text(f"{title}: no change in {d.compared} tasks", style="green")
        else:
            table = Table(title=title, title_justify="left")
            table.add_column("change", style="bold", no_wrap=True)
            table.add_column("task")
            table.add_column("before")
            table.add_column("after")
            for ch in d.changes:
                style = {"new failure": "red", "fixed": "green"}.get(ch.kind, "yellow")
                table.add_row(Text(ch.kind, style=style), ch.text, ch.before, ch.after)
            yield table
        counts = d.counts
        yield Text(
            f"{d.compared} tasks compared · {counts.get('routed differently', 0)} routed "
            f"differently · {counts.get('output differs', 0)} outputs differ · "
            f"{counts.get('new failure', 0)} new failures · {counts.get('fixed', 0)} fixed"
            + (f" · {len(d.unmatched)} unmatched" if d.unmatched else ""),
            style="bold red" if d.regressed else "bold",
        )
