"""`swarm usage`: model tokens (and cost, given a price table) per agent, model, run, session and
task, from the trace store's `llm` spans.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from swarm.cli.common import DB_OPTION, make_console
from swarm.usage import PRICES_ENV, PriceTable, Usage, UsageReport, ranked, usage_report

__all__ = ["UsageTable", "UsageView", "usage", "usage_line"]

_GROUPS = ("agent", "model", "run", "session", "task")


@click.command("usage")
@DB_OPTION
@click.option("--run", "run_id", default=None, help="Only this run (default: the whole store).")
@click.option(
    "--by",
    "groups",
    multiple=True,
    type=click.Choice(_GROUPS),
    help="Tables to show (repeat it). Default: agent and model, plus run (whole store) or task "
    "(one run).",
)
@click.option(
    "--prices",
    "prices_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help=f"Price table (YAML/JSON: model -> {{input, output}} per million tokens). "
    f"Default: ${PRICES_ENV}.",
)
@click.option("--limit", default=20, show_default=True, help="Rows per table.")
@click.option("--json", "as_json", is_flag=True, help="The whole report as one JSON object.")
def usage(
    db: str,
    run_id: str | None,
    groups: tuple[str, ...],
    prices_path: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Tokens and cost of the LLM calls in the trace store."""
    from swarm.errors import TaskNotFound
    from swarm.trace import TraceStore

    prices = PriceTable.load(prices_path) if prices_path else PriceTable.from_env()
    with TraceStore(db) as store:
        if run_id is not None and store.run(run_id) is None:
            raise TaskNotFound(f"no run {run_id!r} in {store.url}")
        report = usage_report(store, run_id=run_id, prices=prices)
    if as_json:
        click.echo(json.dumps({"run_id": run_id, **report.to_json()}))
        return
    shown = groups or ("agent", "model", "task" if run_id else "run")
    make_console().print(UsageView(report, shown, limit=limit, run_id=run_id))


class UsageView:
    """The tables `swarm usage` prints, then the total line."""

    def __init__(
        self,
        report: UsageReport,
        groups: tuple[str, ...],
        *,
        limit: int = 20,
        run_id: str | None = None,
    ) -> None:
        self.report, self.groups, self.limit, self.run_id = report, groups, limit, run_id

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.report.total.calls:
            where = f"run {self.run_id}" if self.run_id else "the store"
            yield f"no LLM calls in {where}"
            return
        for group in self.groups:
            items: Mapping[Any, Usage] = getattr(self.report, f"by_{group}")
            yield UsageTable(items, group, limit=self.limit)
        yield usage_line(self.report.total, label="total")


class UsageTable:
    """One group of a report as a table, most tokens first."""

    def __init__(self, items: Mapping[Any, Usage], group: str, *, limit: int = 20) -> None:
        self.items, self.group, self.limit = items, group, limit

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        rows = ranked(self.items)
        table = Table(title=f"tokens by {self.group}", title_justify="left")
        table.add_column(self.group)
        for name in ("calls", "input", "output", "total", "cost"):
            table.add_column(name, justify="right")
        for key, u in rows[: self.limit]:
            table.add_row(
                "(none)" if key is None else str(key),
                str(u.calls),
                f"{u.input_tokens:,}",
                f"{u.output_tokens:,}",
                f"{u.total_tokens:,}",
                _cost(u),
            )
        if len(rows) > self.limit:
            table.caption = f"{len(rows) - self.limit} more; --limit N or --json for all"
        yield table


def usage_line(u: Usage, *, label: str = "tokens") -> str:
    """`tokens: 1,200 in · 300 out · 4 LLM calls · $0.0012` (the cost only with a price table)."""
    parts = [
        f"{label}: {u.input_tokens:,} in · {u.output_tokens:,} out",
        f"{u.calls} LLM call{'s' if u.calls != 1 else ''}",
    ]
    if u.cost is not None:
        parts.append(_cost(u))
    if u.unpriced:
        parts.append(f"{u.unpriced} without a price")
    if u.without_usage:
        parts.append(f"{u.without_usage} without token counts")
    return " · ".join(parts)


def _cost(u: Usage) -> str:
    if u.cost is None:
        return "-"
    digits = 4 if u.cost == 0 or u.cost >= 0.01 else 6  # a cheap model's cents still show
    return f"${u.cost:,.{digits}f}" + ("+" if u.unpriced else "")
