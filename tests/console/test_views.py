"""The console's views, rendered into a fixed-width console, and the command parser."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from swarm.console.commands import COMMANDS, UsageProblem, parse
from swarm.console.live import RequestStatus
from swarm.console.views import (
    AgentsTable,
    CaseRow,
    HelpView,
    HistoryTable,
    RetrainView,
    RoutingNote,
)
from swarm.context import Span
from swarm.models import Decision, Result, Task, TaskStatus, short_id
from swarm_examples.quickstart import AGENTS


def render(*renderables: object) -> str:
    console = Console(file=io.StringIO(), width=100, color_system=None, highlight=False)
    for r in renderables:
        console.print(r)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def test_help_lists_every_command() -> None:
    text = render(HelpView())
    for c in COMMANDS:
        assert c.usage in text and c.help in text


def test_agents_table_shows_descriptions_and_limits() -> None:
    text = render(AgentsTable(AGENTS))
    assert "tech_support" in text and "Website and app problems" in text
    row = next(line for line in text.splitlines() if "tech_support" in line)
    assert "5s" in row and "10" in row  # timeout 5 s, ten examples
    assert "none" in render(AgentsTable([SimpleNamespace(**{**vars(AGENTS[2]), "timeout": None})]))


def test_routing_note_for_ambiguous_and_out_of_scope() -> None:
    ambiguous = Decision("a", 0.45, (("a", 0.45), ("b", 0.40)), status="ambiguous")
    assert "ambiguous, did you mean a or b?" in render(RoutingNote(ambiguous))
    oos = Decision(None, 0.2, (("a", 0.2),), status="out_of_scope")
    assert "out of scope: none of the agents should take this" in render(RoutingNote(oos))
    assert render(RoutingNote(Decision("a", 0.9, (("a", 0.9),)))) == ""


def test_history_table() -> None:
    rows = [
        {"id": "t1", "status": "done", "agent": "orders", "text": "where is my order"},
        {"id": "t2", "status": "cancelled", "agent": None, "text": "sleep"},
    ]
    text = render(HistoryTable(rows, "storage/console_history"))
    assert "where is my order" in text and "cancelled" in text
    assert "storage/console_history" in text
    assert "no requests in this session yet" in render(HistoryTable([]))


def test_retrain_view_side_by_side() -> None:
    old = SimpleNamespace(
        version="v1", accuracy=0.5, macro_f1=0.4, in_scope_accuracy=0.6, oos_recall=0.0, ece=0.3
    )
    new = SimpleNamespace(
        version="v2", accuracy=1.0, macro_f1=1.0, in_scope_accuracy=1.0, oos_recall=1.0, ece=0.05
    )
    cases = [CaseRow("my parcel came but I was charged twice", "orders", "billing", "orders")]
    text = render(RetrainView(old, new, cases, switched=True, held_out=4, trained_on=50))
    header = next(line for line in text.splitlines() if "old v1" in line)
    assert "new v2" in header  # side by side
    row = next(line for line in text.splitlines() if "accuracy" in line)
    assert "50.0%" in row and "100.0%" in row
    assert "0/1" in text and "1/1" in text
    assert "switched: router v2 now serves" in text
    kept = render(RetrainView(new, old, [], switched=False, held_out=4, trained_on=50))
    assert "kept router v2" in kept and "out-of-scope recall" in kept


def test_request_status_turns_store_writes_into_events() -> None:
    lines: list[str] = []
    decisions: list[Decision] = []
    root = Task(text="refund please")
    status = RequestStatus(root, lambda r: lines.append(render(r)), decisions.append)
    status.queued(root)
    d = Decision("billing", 0.9, (("billing", 0.9),))
    status.decided(root.id, d)
    assert decisions == [d]
    assert "routing…" not in render(status) and "waiting for an agent" in render(status)
    status.started(root.id, "billing", 1)
    assert "billing working on “refund please”" in render(status)
    child = Task(text="order status", parent=root.id)
    status.queued(child)
    status.decided(child.id, Decision("orders", 1.0, status="forced"))
    status.started(child.id, "orders", 1)
    span = Span("tool", "lookup_order", child.id, ended_at=None)
    span.ended_at = span.started_at + 0.002
    status.span(span)
    status.finished(Result(task_id=child.id, status=TaskStatus.DONE, agent="orders"))
    handoff = Span("agent", "handoff:billing->accounts", root.id)
    handoff.set(source="billing", target="accounts", reason="not money")
    status.span(handoff)
    status.started(root.id, "accounts", 2)
    status.started(root.id, "accounts", 3)  # a retry of the same agent
    status.queued(Task(text="someone else's task"))  # not part of this request: ignored
    assert status.events == [
        "  ↳ billing delegates “order status”  child " + short_id(child.id),
        "    route sent to orders without routing",
        "  · tool lookup_order 2 ms",
        f"  ✓ child {short_id(child.id)} done by orders",
        "⇢ handoff billing → accounts  not money",
        "⟳ accounts: attempt 2",
    ]
    assert len(lines) == len(status.events)


@pytest.mark.parametrize(
    ("line", "name", "args"),
    [("/help", "help", []), ("/trace abc", "trace", ["abc"]),
     ("/ROUTE billing", "route", ["billing"]), ("/q", "quit", []), ("/exit", "quit", []),
     ('/route "tech_support"', "route", ["tech_support"])],
)  # fmt: skip
def test_parse(line: str, name: str, args: list[str]) -> None:
    parsed = parse(line)
    assert parsed.command.name == name and parsed.args == args


@pytest.mark.parametrize(
    ("line", "message"),
    [("/", "a command follows the slash"), ("/nope", "unknown command /nope"),
     ("/route", "usage: /route AGENT"), ("/route a b", "usage: /route AGENT"),
     ("/why now", "usage: /why"), ("/trace 'x", "cannot read that line")],
)  # fmt: skip
def test_parse_problems_are_one_line(line: str, message: str) -> None:
    with pytest.raises(UsageProblem, match=message) as info:
        parse(line)
    assert "\n" not in str(info.value)


def test_agents_and_history_tables_are_readable_at_80_columns() -> None:
    from swarm import agent
    from swarm.console.views import AgentsTable, HistoryTable

    @agent(examples=["a", "b"], max_concurrency=4, timeout=None, retries=2)
    async def technical_support_desk(task: object, ctx: object) -> str:
        """Website and app problems: errors, crashes, pages that do not load."""
        return ""

    out = Console(file=io.StringIO(), width=80, color_system=None)
    out.print(AgentsTable([technical_support_desk]))
    task = {"id": "01a22c4bc645770cc0f3ca7d53", "status": "done", "agent": "orders",
            "text": "where is my parcel I ordered last week"}  # fmt: skip
    out.print(HistoryTable([task]))
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert all(len(line.rstrip()) <= 80 for line in text.splitlines())
    seen = {w for line in text.splitlines() for w in line.replace("│", " ").split()}
    # retries (the least useful) is left out for this long name; the rest fold under examples
    assert {"technical_support_desk", "examples", "concurrency", "timeout", "none"} <= seen
    assert "Website and app problems" in " ".join(text.split())
    assert {"01a22c4bc645770cc0f3ca7d53", "orders", "request", "status"} <= seen
