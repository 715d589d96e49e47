"""Task and run ids people can type: the short id shown (the random end) resolves, a prefix
still does, and a part that fits several names how many and shows some."""

from __future__ import annotations

import re
import time

import pytest
from click.testing import CliRunner

from swarm import TaskNotFound, TraceStore
from swarm.cli import main
from swarm.models import SHORT_ID_LENGTH, Decision, Task, new_id, short_id


def test_ids_sort_by_time_and_differ_at_the_end() -> None:
    earlier = new_id()
    time.sleep(0.002)
    ids = [new_id() for _ in range(2000)]
    assert all(earlier < i for i in ids)  # the store's key stays append-mostly
    assert abs(int(ids[0][:12], 16) - time.time() * 1000) < 5000
    assert len({short_id(i) for i in ids}) == len(ids)
    assert all(i.endswith(short_id(i)) and len(short_id(i)) == SHORT_ID_LENGTH for i in ids)


def test_the_short_id_resolves_and_an_ambiguous_part_lists_candidates(store: TraceStore) -> None:
    tasks = [Task(text=f"request number {i}") for i in range(30)]
    for t in tasks:
        store.task_queued(t)
    store.flush_sync()
    for t in tasks:
        assert store.task(short_id(t.id))["id"] == t.id
        assert store.task(t.id[:22])["id"] == t.id  # a unique prefix still works
    shared = tasks[0].id[:6]  # the time part: every task of the run begins with it
    assert all(t.id.startswith(shared) for t in tasks)
    with pytest.raises(TaskNotFound) as caught:
        store.task(shared)
    message = str(caught.value)
    assert message.startswith(f"{shared!r} matches 30 tasks in {store.url}: ")
    shown = re.findall(r"([0-9a-f]{26}) \('request number \d+'\)", message)
    assert len(shown) == 5 and set(shown) <= {t.id for t in tasks}
    assert message.endswith(", ...; give more of the id")


def test_lookups_take_text_literally(store: TraceStore) -> None:
    store.task_queued(Task(text="x"))
    store.flush_sync()
    for ref in ("%", "_", "/", "%%%%%%%%"):  # LIKE's wildcards and escape match themselves only
        with pytest.raises(TaskNotFound, match=f"no task with id {re.escape(repr(ref))}"):
            store.task(ref)


def test_traces_run_takes_the_end_or_the_start_of_a_run_id(db_url: str) -> None:
    with TraceStore(db_url) as store:
        runs = [store.start_run() for _ in range(2)]
        for n, run in enumerate(runs):
            store.task_queued(Task(text=f"task of run {n}", run_id=run))
    runner = CliRunner(env={"COLUMNS": "200"})
    for ref in (short_id(runs[1]), runs[1][:20]):
        out = runner.invoke(main, ["traces", "--db", db_url, "--run", ref, "--json"])
        assert out.exit_code == 0, out.output
        assert '"task of run 1"' in out.output and "task of run 0" not in out.output
    out = runner.invoke(main, ["traces", "--db", db_url, "--run", runs[0][:6]])
    assert out.exit_code == 2 and "matches 2 runs" in out.output


def test_swarm_db_picks_the_store_of_every_command(db_url: str) -> None:
    """$SWARM_DB is `--db`'s default: the commands that read the store find the same rows."""
    with TraceStore(db_url) as store:
        run = store.start_run()
        task = Task(text="read through SWARM_DB", run_id=run)
        store.task_queued(task)
        store.record_decision(task.id, Decision("cards", 0.9, (("cards", 0.9),), "v1"))
    runner = CliRunner(env={"COLUMNS": "200", "SWARM_DB": db_url})
    for command in (
        ["traces", "--json"],
        ["traces", "show", short_id(task.id), "--json"],
        ["usage", "--run", run, "--json"],
        ["feedback", short_id(task.id), "good", "--json"],
    ):
        out = runner.invoke(main, command)
        assert out.exit_code == 0, (command, out.output)
        assert task.id in out.output or run in out.output, command
    with TraceStore(db_url) as store:
        assert [f["task_id"] for f in store.feedback()] == [task.id]
