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
from swarm.events import Event
from swarm.models import Decision, Task, short_id
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


def test_request_status_turns_a_requests_events_into_lines() -> None:
    lines: list[str] = []
    decisions: list[Decision] = []
    root = Task(text="refund please")
    status = RequestStatus(root, lambda r: lines.append(render(r)), decisions.append)
    child = Task(text="order status", parent=root.id)

    def event(kind: str, task: Task, /, **data: object) -> None:
        status.handle(Event(kind, task.id, dict(data), parent_id=task.parent))

    event("queued", root, text=root.text, parent_id=None, agent=None)
    d = Decision("billing", 0.9, (("billing", 0.9),), version="v3", rule="head")
    event("routed", root, **d.to_dict(), reason=d.reason)
    assert decisions == [d]
    assert "routing…" not in render(status) and "waiting for an agent" in render(status)
    event("started", root, agent="billing", attempt=1)
    assert "billing working on “refund please”" in render(status)
    event("token", root, text="Your refund\nis on")
    event("token", root, text=" its way")
    assert "Your refund is on its way" in render(status)
    event("delegated", root, child_id=child.id, text=child.text, agent=None)
    event("queued", child, text=child.text, parent_id=root.id, agent=None)
    forced = Decision("orders", 1.0, status="forced")
    event("routed", child, **forced.to_dict(), reason=forced.reason)
    event("started", child, agent="orders", attempt=1)
    tool = {"id": "s1", "kind": "tool", "name": "lookup_order", "status": "ok", "error": None}
    event("span", child, **tool, duration_ms=2.0, parent_id=None)
    event("span", child, **{**tool, "kind": "agent", "name": "orders"}, duration_ms=3.0)
    event("done", child, status="done", agent="orders", output="shipped", error=None)
    event("handoff", root, **{"from": "billing", "to": "accounts", "reason": "not money"})
    event("started", root, agent="accounts", attempt=1)
    event("started", root, agent="accounts", attempt=2)  # a retry of the same agent
    event("waiting", root, approval_id="ap1", question="refund 120.00?", expires_at=None)
    assert "accounts waits for a person" in render(status)
    event("approved", root, approval_id="ap1", by="ana", note=None)
    assert "accounts working on" in render(status)
    event("queued", Task(text="someone else's task"), text="x", parent_id=None, agent=None)
    event("done", root, status="done", agent="accounts", output="ok", error=None)
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
