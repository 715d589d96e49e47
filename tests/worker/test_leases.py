"""Leases on a real store (a SQLite file and PostgreSQL): claims never overlap, an expired lease is
taken over and its old owner can no longer record over the new one, heartbeats renew, close
releases, a task naming an agent waits for a worker that has it, and resume's rules."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from swarm.models import Result, Task, TaskStatus
from swarm.trace import TraceStore
from swarm.trace import leases as lease_sql
from swarm.trace.schema import TaskRow


def _ids(rows: list[dict]) -> list[str]:
    return [r["id"] for r in rows]


def test_concurrent_claims_never_take_a_task_twice(any_url: str) -> None:
    stores = [TraceStore(any_url) for _ in range(4)]
    try:
        queued = set(stores[0].enqueue_many([f"task {i}" for i in range(120)]))
        got: list[list[str]] = [[] for _ in stores]

        def drain(i: int) -> None:
            while rows := stores[i].claim(7):
                got[i] += _ids(rows)

        threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        every = [task for part in got for task in part]
        assert sorted(every) == sorted(queued)  # each one exactly once
        assert sum(1 for part in got if part) >= 2  # they really did share the queue
        owners = {r["lease_owner"] for r in stores[0].tasks(limit=None)}
        assert owners <= {s.owner for s in stores} and None not in owners
    finally:
        for s in stores:
            s.close()


def test_claims_take_priority_first_and_leave_children_and_leased_tasks(any_url: str) -> None:
    with TraceStore(any_url) as a, TraceStore(any_url) as b:
        low = a.enqueue("low")
        high = a.enqueue("high", priority=5)
        a.task_queued(Task(text="leased to a"))  # a's own task: leased to a from the start
        a.flush_sync()
        assert _ids(b.claim(1)) == [high]
        assert _ids(b.claim(5)) == [low]


def test_a_task_naming_an_agent_waits_for_a_worker_that_has_it(any_url: str) -> None:
    with TraceStore(any_url) as store:
        store.enqueue("refund me", agent="refunds")
        plain = store.enqueue("anything")
        assert _ids(store.claim(5, agents=["cards"])) == [plain]
        assert [r["text"] for r in store.claim(5, agents=["cards", "refunds"])] == ["refund me"]


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_record(
    any_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with TraceStore(any_url) as ghost, TraceStore(any_url) as b:
        task_id = ghost.enqueue("send invoice 7")
        # A worker that claimed it and then stalled: no heartbeat renews its lease.
        [row] = lease_sql.claim(ghost.engine, "worker-stalled", 1, lease_s=0.3)
        assert row["id"] == task_id and b.claim(1) == []  # alive lease: left alone
        time.sleep(0.4)
        [taken] = b.claim(1)
        assert taken["id"] == task_id and taken["lease_owner"] == b.owner
        # The stalled worker wakes up and records its start and result: refused, and said so.
        ghost.owner = "worker-stalled"
        with caplog.at_level(logging.WARNING, logger="swarm.trace"):
            ghost.task_started(task_id, "invoices", 1)
            ghost.task_finished(Result(task_id=task_id, status=TaskStatus.DONE, output="ghost"))
            ghost.flush_sync()
        row = b.task(task_id)
        assert row["status"] == "queued" and row["output"] is None
        assert row["lease_owner"] == b.owner
        assert "no longer holds their lease" in caplog.text and task_id in caplog.text
        # The new owner's result is recorded, and its lease released.
        b.task_started(task_id, "invoices", 1)
        b.task_finished(Result(task_id=task_id, status=TaskStatus.DONE, output="b"))
        b.flush_sync()
        row = b.task(task_id)
        assert (row["status"], row["output"], row["lease_owner"]) == ("done", "b", None)


def test_heartbeats_renew_leases_and_close_releases_them(any_url: str) -> None:
    holder = TraceStore(any_url, lease=0.5, heartbeat=0.1)
    with TraceStore(any_url) as other:
        try:
            holder.enqueue_many(["one", "two"])
            assert len(holder.claim(5)) == 2
            time.sleep(1.0)  # twice the lease: only heartbeats keep it
            assert other.claim(5) == []
            row = other.tasks(limit=1)[0]
            assert row["lease_expires_at"] > time.time()
        finally:
            holder.close()
        [worker] = other.workers([holder.owner])
        assert worker["stopped_at"] is not None and worker["heartbeat_at"] > worker["started_at"]
        assert len(other.claim(5)) == 2  # released on close: no wait for the lease


def test_a_dead_owners_unfinished_children_are_superseded_when_its_task_is_taken(
    any_url: str,
) -> None:
    with TraceStore(any_url) as store:
        past = time.time() - 1
        rows = [
            {"id": "parent-1", "parent_id": None, "text": "p", "status": "running",
             "created_at": past, "lease_owner": "worker-dead", "lease_expires_at": past},
            {"id": "child-1", "parent_id": "parent-1", "text": "c", "status": "running",
             "created_at": past, "lease_owner": "worker-dead", "lease_expires_at": past},
        ]  # fmt: skip
        with store.engine.begin() as conn:
            conn.execute(TaskRow.__table__.insert(), rows)
        assert _ids(store.claim(5)) == ["parent-1"]  # the child is not claimed on its own
        child = store.task("child-1")
        assert child["status"] == "cancelled" and "superseded" in child["error"]
        assert child["lease_owner"] is None


def test_take_leaves_live_leases_unless_told(any_url: str) -> None:
    with TraceStore(any_url) as a, TraceStore(any_url) as b:
        first, second = a.enqueue_many(["first", "second"])
        a.claim(2)
        assert b.take([first, second]) == []
        assert b.take([first], dead=[a.owner]) == [first]
        assert b.take([second], force=True) == [second]
        assert {r["lease_owner"] for r in a.tasks(limit=None)} == {b.owner}


def test_resumable_judges_each_row_by_its_lease() -> None:
    now = time.time()
    me = TraceStore("sqlite://")  # this process, as a lease owner on this host
    try:
        import os
        import socket

        alive = {"id": "w-alive", "host": socket.gethostname(), "pid": os.getpid(),
                 "meta": {}, "stopped_at": None}  # fmt: skip
        gone = {**alive, "id": "w-gone", "pid": 2**22 + 7}  # no such process
        far = {**alive, "id": "w-far", "host": "another-host"}
        workers = {w["id"]: w for w in (alive, gone, far)}

        def row(i: str, owner: str | None, expires: float | None, run: str | None = "r") -> dict:
            return {"id": i, "lease_owner": owner, "lease_expires_at": expires, "run_id": run}

        rows = [
            row("live", "w-alive", now + 20),
            row("expired", "w-alive", now - 1),
            row("dead-here", "w-gone", now + 20),  # same host, process gone: at once
            row("far", "w-far", now + 9),  # another host: judged by its lease
            row("legacy", None, None),
            row("queue", None, None, run=None),
        ]
        taken, left, queued = lease_sql.resumable(rows, workers, now=now)
        assert _ids(taken) == ["expired", "dead-here", "legacy"]
        assert _ids(queued) == ["queue"]
        assert set(left) == {"w-alive", "w-far"}
        assert left["w-far"]["tasks"] == ["far"] and left["w-far"]["lease_left_s"] == 9.0
        assert left["w-alive"]["pid"] == os.getpid()
        forced, left, _ = lease_sql.resumable(rows, workers, force=True, now=now)
        assert len(forced) == 5 and left == {}
    finally:
        me.close()


def test_a_bad_lease_configuration_is_refused() -> None:
    from swarm.errors import ConfigError

    with pytest.raises(ConfigError, match="heartbeat"):
        TraceStore("sqlite://", lease=1.0, heartbeat=2.0)


def test_an_owner_never_claims_its_own_expired_lease(any_url: str) -> None:
    with TraceStore(any_url) as a, TraceStore(any_url) as b:
        a.enqueue("late heartbeat")
        [row] = a.claim(1)
        with a.engine.begin() as conn:  # its heartbeat is late: the lease lapsed
            conn.execute(
                TaskRow.__table__.update()
                .where(TaskRow.__table__.c.id == row["id"])
                .values(lease_expires_at=time.time() - 1)
            )
        assert a.claim(5) == []  # it runs that task already
        assert _ids(b.claim(5)) == [row["id"]]  # another worker may take it
