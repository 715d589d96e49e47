"""The routing decision's rule (which router rule decided) is stored, read back, and added as a
nullable column to a store written before decisions named it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swarm import TraceStore
from swarm.models import Decision, Task


def test_the_rule_is_stored_and_read_back(db_url: str) -> None:
    url = db_url
    far, forced = Task(text="what is the weather"), Task(text="x")
    with TraceStore(url) as store:
        for t in (far, forced):
            store.task_queued(t)
        store.record_decision(
            far.id, Decision(None, 0.59, (("cards", 0.59),), "v1", status="out_of_scope",
                             rule="far_from_examples"),
        )  # fmt: skip
        store.record_decision(forced.id, Decision("cards", 1.0, status="forced"))
    with TraceStore(url) as store:
        assert store.decision(far.id)["rule"] == "far_from_examples"  # type: ignore[index]
        assert store.decision(forced.id)["rule"] is None  # type: ignore[index]


def test_an_older_store_gets_the_column_and_keeps_its_rows(
    db_url: str, sql: Callable[..., Any]
) -> None:
    old = Task(text="block my card")
    with TraceStore(db_url) as store:
        store.task_queued(old)
        store.record_decision(old.id, Decision("cards", 0.9, (("cards", 0.9),), "v0"))
    sql("ALTER TABLE routing_decisions DROP COLUMN rule")  # as a store made before
    new = Task(text="hello")
    with TraceStore(db_url) as store:
        store.task_queued(new)
        store.record_decision(new.id, Decision(None, 0.4, status="out_of_scope", rule="ambiguous"))
    with TraceStore(db_url) as store:
        assert store.decision(old.id)["agent"] == "cards"  # type: ignore[index]
        assert store.decision(old.id)["rule"] is None  # type: ignore[index]
        assert store.decision(new.id)["rule"] == "ambiguous"  # type: ignore[index]


def test_the_task_tree_shows_the_rule(db_url: str) -> None:
    import io

    from rich.console import Console

    from swarm.views import TaskTree

    url = db_url
    task = Task(text="what is the weather")
    with TraceStore(url) as store:
        store.task_queued(task)
        store.record_decision(
            task.id, Decision(None, 0.59, (("cards", 0.59),), "v1", status="out_of_scope",
                              rule="far_from_examples"),
        )  # fmt: skip
    with TraceStore(url) as store:
        buffer = io.StringIO()
        Console(file=buffer, width=120, color_system=None).print(TaskTree(store.task_tree(task.id)))
    assert "rule far_from_examples" in buffer.getvalue()
