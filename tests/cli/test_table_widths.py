"""`swarm traces` tables stay readable however narrow the terminal: every header and value that
is shown is shown whole (ids, versions and times are copied from here), columns fold as a grey
second line before any is squeezed, and no line runs past the width."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from swarm.cli.views import Column, FittedTable, RunsTable, TasksTable

RUNS = [
    {
        "id": "01a22c4bc5ec468232e6025ba5", "kind": "resume", "started_at": 1796039493.1,
        "finished_at": 1796039553.9, "tasks": 53, "agents": "swarm.examples.quickstart",
        "router_version": "20261130-115217-d27d43",
    },
    {
        "id": "01a22c4bc5ec468232e6025bb7", "kind": "test", "started_at": 1796039493.1,
        "finished_at": None, "tasks": 1, "agents": None, "router_version": "keyword",
    },
]  # fmt: skip

TASKS = [
    {
        "id": "01a22c4bc645770cc0f3ca7d53", "status": "cancelled", "agent": "transfers",
        "text": "I want to send money to my brother", "output": None,
        "error": "ValueError: the amount is missing",
    },
    {
        "id": "01a22c4bc645770cc0f3ca7d54", "status": "done", "agent": "greet", "text": "hello",
        "output": {"answer": "hi"}, "error": None,
    },
]  # fmt: skip


def render(view: object, width: int) -> list[str]:
    out = Console(file=io.StringIO(), width=width, color_system=None)
    out.print(view)
    lines = out.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert all(len(line.rstrip()) <= width for line in lines)
    return lines


def words(lines: list[str]) -> set[str]:
    return {w for line in lines for w in line.replace("│", " ").replace("┃", " ").split()}


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_runs_table_shows_every_value_whole(width: int) -> None:
    lines = render(RunsTable(RUNS), width)
    seen = words(lines)
    text = "\n".join(lines)
    for r in RUNS:
        assert r["id"] in seen and r["router_version"] in seen  # the issue: cut to `20261130-1…`
        assert "2026-11-30" in seen and "…" not in text
    assert "swarm.examples.quickstart" in seen and "60.8" in seen and "unfinished" in seen
    assert {"run", "kind", "started", "took", "tasks", "agents", "router"} <= seen


@pytest.mark.parametrize("width", [80, 120])
def test_tasks_table_shows_ids_whole_and_folds_the_output(width: int) -> None:
    lines = render(TasksTable(TASKS), width)
    seen = words(lines)
    for t in TASKS:
        assert t["id"] in seen and t["status"] in seen and t["agent"] in seen
    assert {"task", "status", "agent", "text", "output", "error"} <= seen
    text = " ".join(" ".join(line.replace("│", " ").split()) for line in lines)
    assert "ValueError: the amount is" in text
    # At 80 the output folds under the text (one column fewer), at 120 it has its own.
    header = next(line for line in lines if "task" in line.split())
    assert header.count("┃") + 1 == (4 if width == 80 else 5)


def test_columns_fold_then_go_lowest_keep_first_and_none_is_squeezed() -> None:
    columns = [
        Column("id", keep=9),
        Column("a", keep=1, fold_into="id"),
        Column("b", keep=2),
        Column("c", keep=0, fold_into="b"),
    ]
    rows = [{"id": "x" * 30, "a": "aaaa", "b": "b" * 30, "c": "c" * 40}]
    table = FittedTable("t", columns, rows)
    headers = lambda w: [str(c.header).split("\n") for c in table.fit(w).columns]  # noqa: E731
    assert headers(200) == [["id"], ["a"], ["b"], ["c"]]  # 115 cells wide
    assert headers(110) == [["id"], ["a"], ["b", "c"]]  # c folds first: it keeps least
    assert headers(80) == [["id", "a"], ["b", "c"]]
    assert headers(70) == [["id", "a"], ["b"]]  # c has no room even folded: left out
    assert headers(40) == [["id"]]
    assert "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" in " ".join(render(table, 40))


@pytest.mark.parametrize("width", [80, 120])
def test_router_versions_table_shows_versions_whole(width: int) -> None:
    from swarm.cli.views import versions_table

    first, second = "20261130-115217-d27d43", "20261130-121502-9f00ab"
    promotion = {"promoted": True, "before": {"accuracy": 0.91}, "after": {"accuracy": 0.93}}
    manifests = [
        {"version": first, "metrics": {"heldout_accuracy": 0.91}},
        {"version": second, "parent": first, "promotion": promotion},
    ]
    seen = words(render(versions_table(manifests, second), width))
    assert {first, second, "0.9100", "0.9300", "promoted", "(+2.00", "*"} <= seen
    assert {"version", "from", "held-out", "promotion"} <= seen
