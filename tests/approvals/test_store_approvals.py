"""The trace store's approval methods on SQLite and PostgreSQL: one row per question and step,
found again; ids by their end; a decision is final; expiry; waiting tasks count as unfinished."""

from __future__ import annotations

import time

import pytest

from swarm import ApprovalDecided, ConfigError, Task, TaskNotFound, TraceStore


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, db_url: str):  # type: ignore[no-untyped-def]
    url = db_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    store = TraceStore(url)
    yield store
    store.close()


def running_task(store: TraceStore) -> Task:
    task = Task(text="refund")
    store.task_queued(task)
    store.task_started(task.id, "refunds", 1)
    store.flush_sync()
    return task


def test_one_row_per_question_and_step(any_store: TraceStore) -> None:
    task = running_task(any_store)
    first = any_store.ask_approval(task.id, "refund 10?", details={"amount": 10})
    assert any_store.task(task.id)["status"] == "waiting"
    assert any_store.ask_approval(task.id, "refund 10?")["id"] == first["id"]  # asked again
    second = any_store.ask_approval(task.id, "refund 10?", occurrence=1)  # asked a second time
    other = any_store.ask_approval(task.id, "close the account?")
    assert len({first["id"], second["id"], other["id"]}) == 3
    assert [r["id"] for r in any_store.approvals(task_id=task.id)] == [
        first["id"],
        second["id"],
        other["id"],
    ]
    assert any_store.approval(first["id"][-8:])["details"] == {"amount": 10}
    assert {t["id"] for t in any_store.unfinished_tasks()} == {task.id}


def test_a_decision_is_final(any_store: TraceStore) -> None:
    task = running_task(any_store)
    row = any_store.ask_approval(task.id, "refund 10?")
    decided = any_store.decide_approval(row["id"], False, "ana", "no")
    assert (decided["status"], decided["decided_by"], decided["note"]) == ("denied", "ana", "no")
    assert decided["decided_at"] is not None
    with pytest.raises(ApprovalDecided, match="was denied by ana"):
        any_store.decide_approval(row["id"], True)
    # Settling a decided one changes nothing either.
    assert any_store.settle_approval(row["id"], "expired")["status"] == "denied"
    assert any_store.approvals("waiting") == []
    assert [r["id"] for r in any_store.approvals("denied")] == [row["id"]]


def test_an_approval_past_its_time_cannot_be_approved(any_store: TraceStore) -> None:
    task = running_task(any_store)
    row = any_store.ask_approval(task.id, "refund 10?", timeout=0.05)
    assert row["expires_at"] == pytest.approx(row["created_at"] + 0.05)
    time.sleep(0.1)
    with pytest.raises(ApprovalDecided, match="expired") as refused:
        any_store.decide_approval(row["id"], True)
    assert refused.value.approval["status"] == "expired"


def test_bad_ids_and_statuses(any_store: TraceStore) -> None:
    with pytest.raises(TaskNotFound, match="no approval with id 'nope'"):
        any_store.approval("nope")
    with pytest.raises(ConfigError, match="approval status must be one of"):
        any_store.approvals("pending")
