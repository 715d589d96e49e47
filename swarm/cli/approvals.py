"""`swarm approvals` lists the questions agents put to people; `swarm approve ID [--deny]` answers
one. Thin: the rules (a decision is final, ids by their end) are the store's; the process that
runs the waiting task finds the decision within a poll.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from swarm.cli.common import DB_OPTION, make_console
from swarm.models import short_id

__all__ = ["approvals", "approve", "tell_waiting"]


@click.command()
@click.argument("approval_id")
@click.option("--deny", is_flag=True, help="Deny instead of approve.")
@click.option("--note", default=None, help="Why, in a few words; kept with the decision.")
@click.option("--by", "by", default=None, help="Who decides. Default: the user name ($USER).")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="The decided approval as JSON.")
def approve(
    approval_id: str, deny: bool, note: str | None, by: str | None, db: str, as_json: bool
) -> None:
    """Approve (or --deny) the waiting approval APPROVAL_ID (its end will do, as `swarm
    approvals` shows it). A decision is final; the waiting task goes on within a second."""
    from swarm.trace import TraceStore

    with TraceStore(db) as store:
        row = store.decide_approval(approval_id, not deny, by or _user(), note)
    if as_json:
        click.echo(json.dumps(row, default=str))
        return
    style = "green" if row["status"] == "approved" else "red"
    line = Text.assemble(
        (row["status"], style), f" {row['id']}: {row['question']} (task {row['task_id']})"
    )
    make_console().print(line, soft_wrap=True)


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Decided ones too, not only those waiting.")
@click.option(
    "--task", "task_id", default=None, help="Only this task's (the end of its id will do)."
)
@click.option("--limit", default=50, show_default=True)
@DB_OPTION
@click.option("--json", "as_json", is_flag=True)
def approvals(show_all: bool, task_id: str | None, limit: int, db: str, as_json: bool) -> None:
    """The approvals waiting for a person (--all: every one, oldest first); answer one with
    `swarm approve ID [--deny]`."""
    from swarm.trace import TraceStore
    from swarm.views import ApprovalsTable

    with TraceStore(db) as store:
        if task_id is not None:
            task_id = str(store.task(task_id)["id"])
        rows = store.approvals(None if show_all else "waiting", task_id)
    rows = rows[-limit:]
    if as_json:
        click.echo(json.dumps({"approvals": rows}, default=str))
        return
    title = "approvals" if show_all else "approvals waiting for a person"
    out = make_console()
    out.print(ApprovalsTable(rows, title=title))
    if rows and not show_all:
        out.print(Text("answer with `swarm approve ID` or `swarm approve ID --deny`", "grey50"))


@asynccontextmanager
async def tell_waiting(swarm: Any, db: str | None = None) -> AsyncIterator[None]:
    """While the block runs, say on stderr each time a task of `swarm` waits for a person, and
    how to answer (`swarm run`, `swarm resume`): a terminal that waits silently looks hung."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    events = swarm.scheduler.events.subscribe()
    where = f" --db {db}" if db else ""

    async def watch() -> None:
        async for event in events:
            if event.kind == "waiting":
                ref = short_id(event.data["approval_id"])
                err.print(
                    Text.assemble(
                        ("waiting for a person: ", "bold yellow"),
                        event.data["question"],
                        (f"  (swarm approve {ref}{where} [--deny])", "grey50"),
                    )
                )

    watcher = asyncio.ensure_future(watch())
    try:
        yield
    finally:
        events.close()
        watcher.cancel()


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (a bare container)
        return None
