"""The console and approvals: a request that asks a person gives the prompt back with the question;
`/approvals` lists what waits; `/approve ID note` carries the request on to its result; `/deny`
too; approvals already waiting are announced when a session starts. Real store file."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from refund_agents import executions, refunds
from rich.console import Console

from swarm.agents import AgentRegistry
from swarm.console import ConsoleSession
from swarm.models import short_id
from swarm.testing import FakeRouter
from swarm.trace import TraceStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TraceStore]:
    s = TraceStore(f"sqlite:///{tmp_path / 'console.db'}")
    yield s
    s.close()


def run_session(store: TraceStore, lines: list[str | Callable[[], str]]) -> str:
    out = Console(file=io.StringIO(), width=120, color_system=None, highlight=False)
    feed = iter(lines)

    def read_line(prompt: str) -> str:
        try:
            line = next(feed)
        except StopIteration:
            raise EOFError from None
        text = line() if callable(line) else line
        out.print(prompt + text)
        return text

    session = ConsoleSession(
        registry=AgentRegistry([refunds]),
        router=FakeRouter({}, default="refunds"),
        store=store,
        console=out,
        read_line=read_line,
    )
    session.run()
    f = out.file
    assert isinstance(f, io.StringIO)
    return " ".join(f.getvalue().split())  # wrapped lines read as one


def rows_of(store: TraceStore) -> list[dict[str, object]]:
    return store.approvals()


def waiting_id(store: TraceStore) -> str:
    [row] = store.approvals("waiting")
    return short_id(row["id"])


def test_approve_and_deny_from_the_console(store: TraceStore) -> None:
    executions.clear()
    screen = run_session(
        store,
        [
            "refund please",
            "/approvals",
            lambda: f"/approve {waiting_id(store)} looks right",
            "refund again",
            lambda: f"/deny {waiting_id(store)}",
        ],
    )
    assert "refunds asks: refund 120.00 to card ending 4821?" in screen
    assert "/approve" in screen and "the prompt is yours meanwhile" in screen
    assert "approvals waiting for a person" in screen
    assert "approved " + short_id(rows_of(store)[0]["id"]) in screen
    assert '"refunded": 120.0' in screen and "result done" in screen  # it went on to its end
    assert "denied " + short_id(rows_of(store)[1]["id"]) in screen
    rows = store.approvals()
    assert [(r["status"], r["decided_by"], r["note"]) for r in rows] == [
        ("approved", "console", "looks right"),
        ("denied", "console", None),
    ]
    tasks = {t["status"] for t in store.tasks()}
    assert tasks == {"done"}
    assert executions == ["charge 120.0", "refund 120.0", "charge 120.0"]


def test_waiting_approvals_are_announced_and_stay_waiting_after_the_session(
    store: TraceStore,
) -> None:
    run_session(store, ["refund please"])  # leaves (Ctrl-D) while it waits
    [task] = store.unfinished_tasks()
    assert task["status"] == "waiting"
    screen = run_session(store, ["/approvals"])
    assert "1 approval(s) wait for a person" in screen
    assert waiting_id(store) in screen


def test_a_wrong_id_gets_a_usage_line(store: TraceStore) -> None:
    screen = run_session(store, ["/approve nosuch", "/deny"])
    assert "no approval with id 'nosuch'" in screen and "/approvals lists" in screen
    assert "usage: /deny ID [NOTE]" in screen
