"""The trace store on a real SQLite file and on PostgreSQL (`db_url`): what a run writes, the schema
version, WAL, the tree of a task, feedback, and that the batched writer loses nothing on close.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from swarm import (
    ConfigError,
    Handoff,
    StoreError,
    Swarm,
    TaskNotFound,
    TaskStatus,
    TraceStore,
    agent,
)
from swarm.models import Result, Task
from swarm.testing import FakeRouter
from swarm.trace import SCHEMA_VERSION


@agent
async def cards(task, ctx):
    if "dispute" in task.text:
        return Handoff("disputes", "card dispute")
    async with ctx.span("tool", "block_card", card="1234") as span:
        span.set(blocked=True)
    return {"blocked": "1234"}


@agent
async def disputes(task, ctx):
    check = await ctx.delegate("check card 1234", agent="cards")
    return {"dispute": "opened", "card": check.output}


ROUTER = FakeRouter({"card": "cards"})


async def test_a_run_is_recorded_whole(db_url: str) -> None:
    async with Swarm([cards, disputes], router=ROUTER, db=db_url) as s:
        blocked = await s.run("block my card", session="sess-1")
        disputed = await s.run("card dispute please")
        rejected = await s.run("hello there")
        run_id = s.run_id
    with TraceStore(db_url) as store:
        run = store.run(run_id)
        assert run is not None and run["finished_at"] is not None
        assert run["router_version"] == "fake"
        row = store.task(blocked.task_id)
        assert row["status"] == "done" and row["agent"] == "cards"
        assert row["output"] == {"blocked": "1234"} and row["session_id"] == "sess-1"
        assert row["created_at"] <= row["started_at"] <= row["finished_at"]
        d = store.decision(blocked.task_id)
        assert d is not None and d["agent"] == "cards" and d["candidates"] == [["cards", 1.0]]
        assert store.task(rejected.task_id)["status"] == "rejected"
        assert store.decision(rejected.task_id)["status"] == "out_of_scope"

        tree = store.task_tree(disputed.task_id)
        assert tree["hops"] == ["cards", "disputes"]
        kinds = sorted((s["kind"], s["name"]) for s in tree["spans"])
        assert ("agent", "handoff:cards->disputes") in kinds and ("delegate", "cards") in kinds
        (child,) = tree["children"]
        assert child["parent_id"] == disputed.task_id and child["status"] == "done"
        tool = [s for s in child["spans"] if s["kind"] == "tool"][0]
        agent_span = [s for s in child["spans"] if s["kind"] == "agent"][0]
        assert tool["parent_id"] == agent_span["id"]
        assert tool["attributes"] == {"card": "1234", "blocked": True}
        runs = store.runs()
        assert runs[0]["id"] == run_id and runs[0]["tasks"] == 3


async def test_failures_are_recorded_with_their_error(db_url: str) -> None:
    @agent
    async def broken(task, ctx):
        raise ValueError("no such account")

    async with Swarm([broken], router=FakeRouter(default="broken"), db=db_url) as s:
        r = await s.run("x")
    with TraceStore(db_url) as store:
        row = store.task(r.task_id)
        assert row["status"] == "failed" and row["error"] == "ValueError: no such account"
        (span,) = store.spans(task_id=r.task_id)
        assert span["status"] == "error" and "no such account" in span["error"]


def test_sqlite_runs_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    # SQLite only, as the other tests here on a tmp_path file: WAL, the in-memory store and the
    # writer process are SQLite's; everything else runs on both databases (`db_url`).
    path = tmp_path / "t.db"
    TraceStore(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    version = conn.execute("SELECT value FROM swarm_meta WHERE key='schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)
    conn.close()


def test_a_newer_schema_is_refused_and_left_alone(db_url: str, sql: Callable[..., Any]) -> None:
    TraceStore(db_url).close()
    sql("UPDATE swarm_meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(StoreError, match="schema version 99; this swarm knows versions up to"):
        TraceStore(db_url)
    assert sql("SELECT value FROM swarm_meta") == [("99",)]


def test_a_version_1_store_is_migrated_in_place_keeping_its_rows(
    db_url: str, sql: Callable[..., Any]
) -> None:
    with TraceStore(db_url) as store:
        run_id = store.start_run(kind="run")
        task = Task(text="keep me", run_id=run_id)
        store.task_queued(task)
    sql(  # make it what version 1 wrote: no leases, no new tables
        "DROP INDEX ix_tasks_lease",
        "ALTER TABLE tasks DROP COLUMN lease_owner",
        "ALTER TABLE tasks DROP COLUMN lease_expires_at",
        "DROP TABLE workers",
        "DROP TABLE approvals",
        "UPDATE swarm_meta SET value='1' WHERE key='schema_version'",
    )
    with TraceStore(db_url) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
        assert store.task(task.id)["text"] == "keep me"
        assert store.task(task.id)["lease_owner"] is None
        assert {"workers", "approvals"} <= set(inspect(store.engine).get_table_names())


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        TraceStore("::::")


def test_close_writes_everything_buffered(db_url: str) -> None:
    store = TraceStore(db_url, flush_interval=60)  # the writer would not wake on its own
    tasks = [Task(text=f"t{i}") for i in range(2000)]
    for t in tasks:
        store.task_queued(t)
    store.close()
    with TraceStore(db_url) as again:
        assert again.count("tasks") == 2000
        assert {r["status"] for r in again.unfinished_tasks()} == {"queued"}


async def test_flush_waits_for_the_commit_and_does_not_block_the_loop(db_url: str) -> None:
    store = TraceStore(db_url, flush_interval=0.05)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.ensure_future(ticker())
    for i in range(5000):
        store.task_queued(Task(text=f"t{i}"))
    await store.flush()
    t.cancel()
    assert ticks > 1  # the loop kept running while the writer worked
    with TraceStore(db_url) as reader:
        assert reader.count("tasks") == 5000
    store.close()


def test_task_lookup_accepts_a_unique_prefix(store: TraceStore) -> None:
    task = Task(text="x")
    store.task_queued(task)
    store.flush_sync()
    assert store.task(task.id[:20])["id"] == task.id
    with pytest.raises(TaskNotFound, match="no task with id 'zzz'"):
        store.task("zzz")


def test_feedback_is_validated_and_becomes_labelled_pairs(store: TraceStore) -> None:
    a, b = Task(text="lost my card"), Task(text="where is my money")
    for t in (a, b):
        store.task_queued(t)
    store.flush_sync()
    store.record_feedback(a.id, "correction", agent="cards")
    store.record_feedback(b.id, "bad", note="wrong desk")
    with pytest.raises(TaskNotFound):
        store.record_feedback("nope", "good")
    with pytest.raises(ConfigError, match="names the agent"):
        store.record_feedback(a.id, "correction")
    with pytest.raises(ConfigError, match="good, bad or correction"):
        store.record_feedback(a.id, "meh")
    assert store.labelled_feedback() == [("lost my card", "cards")]
    assert [f["kind"] for f in store.feedback()] == ["correction", "bad"]


def test_mark_tasks(store: TraceStore) -> None:
    t = Task(text="x")
    store.task_queued(t)
    store.flush_sync()
    assert store.mark_tasks([t.id], TaskStatus.CANCELLED, "superseded") == 1
    assert store.task(t.id)["status"] == "cancelled"
    assert store.unfinished_tasks() == []


def test_in_memory_store_works_across_threads() -> None:
    with TraceStore("sqlite://") as store:
        t = Task(text="x")
        store.task_queued(t)
        store.flush_sync()
        assert store.task(t.id)["text"] == "x"


def test_writer_columns_match_the_schema() -> None:
    from swarm.trace import _rows
    from swarm.trace.schema import DecisionRow, RunRow, SpanRow, TaskRow

    def names(row: type) -> tuple[str, ...]:
        return tuple(c.name for c in row.__table__.columns)  # type: ignore[attr-defined]

    assert _rows.TASK_COLUMNS == names(TaskRow)
    assert _rows.SPAN_COLUMNS == names(SpanRow)
    assert ("id", *_rows.DECISION_COLUMNS) == names(DecisionRow)
    assert (*_rows.RUN_COLUMNS, "finished_at") == tuple(
        sorted(names(RunRow), key=lambda c: (c == "finished_at", names(RunRow).index(c)))
    )


@pytest.mark.parametrize("writer", ["thread", "process", "postgres"])
async def test_every_writer_records_the_same_run(
    tmp_path: Path, writer: str, request: pytest.FixtureRequest
) -> None:
    if writer == "postgres":
        url = request.getfixturevalue("pg_url")
        store = TraceStore(url)
    else:
        url = f"sqlite:///{tmp_path / writer}.db"
        store = TraceStore(url, writer=writer)  # type: ignore[arg-type]
    async with Swarm([cards, disputes], router=ROUTER, db=store) as s:
        r = await s.run("card dispute please", payload={"card": "1234"})
    store.close()
    with TraceStore(url) as reader:
        tree = reader.task_tree(r.task_id)
        assert tree["status"] == "done" and tree["payload"] == {"card": "1234"}
        assert tree["output"] == {"dispute": "opened", "card": {"blocked": "1234"}}
        assert len(tree["children"]) == 1 and reader.count("spans") >= 4


def test_unpicklable_span_attributes_are_stored_as_text(tmp_path: Path) -> None:
    from swarm.context import Span

    url = f"sqlite:///{tmp_path / 'p.db'}"
    store = TraceStore(url, writer="process")
    task = Task(text="x")
    store.task_queued(task)
    span = Span("tool", "lambda", task.id, attributes={"fn": lambda: 1})
    span.ended_at = span.started_at
    store.record_span(span)
    store.close()
    with TraceStore(url) as reader:
        (row,) = reader.spans(task_id=task.id)
        assert "lambda" in row["attributes"]["fn"]


def test_the_writer_process_outlives_a_killed_parent(tmp_path: Path) -> None:
    """What was handed to the writer is committed even if the process that wrote it is killed."""
    import subprocess
    import sys
    import textwrap

    db = tmp_path / "k.db"
    script = textwrap.dedent(
        f"""
        import os, signal
        from swarm.models import Task
        from swarm.trace import TraceStore
        store = TraceStore("sqlite:///{db}", writer="process")
        for i in range(500):
            store.task_queued(Task(text=f"t{{i}}"))
        store.flush_sync()
        for i in range(500, 1000):
            store.task_queued(Task(text=f"t{{i}}"))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == -9
    with TraceStore(f"sqlite:///{db}") as reader:
        assert reader.count("tasks") >= 500


def test_transitions_in_later_batches_update_their_rows(store: TraceStore) -> None:
    """Started, finished and requeued in batches after the insert: grouped UPDATEs (on
    PostgreSQL one `UPDATE ... FROM (VALUES ...)` per group), each row its own values."""
    run_id = store.start_run()
    tasks = [Task(text=f"t{i}", run_id=run_id, deadline=float(i)) for i in range(30)]
    for t in tasks:
        store.task_queued(t)
    store.flush_sync()
    for i, t in enumerate(tasks[:20]):
        store.task_started(t.id, f"agent{i}", i + 1)
    store.flush_sync()
    for i, t in enumerate(tasks[:10]):
        store.task_finished(
            Result(task_id=t.id, status=TaskStatus.DONE, agent=f"agent{i}", attempts=i + 1,
                   output={"n": i}, hops=[f"agent{i}"])
        )  # fmt: skip
    store.task_queued(tasks[19], resumed=True)
    store.finish_run(run_id)
    store.flush_sync()
    rows = {r["id"]: r for r in store.tasks(run_id=run_id, limit=None)}
    for i, t in enumerate(tasks):
        row = rows[t.id]
        assert row["deadline"] == float(i)
        if i < 10:
            assert (row["status"], row["agent"], row["output"]) == ("done", f"agent{i}", {"n": i})
            assert row["hops"] == [f"agent{i}"] and row["finished_at"] >= row["started_at"]
        elif i < 19:
            assert (row["status"], row["agent"], row["attempts"]) == ("running", f"agent{i}", i + 1)
        else:
            assert (row["status"], row["started_at"]) == ("queued", None)
    run = store.run(run_id)
    assert run is not None and run["finished_at"] is not None
