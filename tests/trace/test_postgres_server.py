"""The throwaway PostgreSQL server the PostgreSQL tests run on, and the trace store on it: a
server that restarts under the store, and one that stays down."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from swarm import StoreError, TaskNotFound
from swarm.models import Task
from swarm.testing.postgres import TemporaryPostgres
from swarm.trace import SCHEMA_VERSION, TraceStore

pytestmark = pytest.mark.slow


def test_each_database_is_new_and_empty(postgres_server: Any) -> None:
    a, b = postgres_server.new_database(), postgres_server.new_database()
    assert a != b
    assert a.startswith("postgresql+psycopg://postgres@127.0.0.1:")


def test_the_store_opens_on_postgres_and_keeps_a_task(pg_url: str) -> None:
    with TraceStore(pg_url) as store:
        assert store.schema_version == SCHEMA_VERSION
        task = Task(text="on postgres")
        store.task_queued(task)
        store.flush_sync()
        assert store.task(task.id)["text"] == "on postgres"


@pytest.fixture
def own_server() -> Iterator[TemporaryPostgres]:
    """A server of the test's own, to kill and start again (the session's one stays up)."""
    with TemporaryPostgres() as server:
        yield server


def durable_database(server: TemporaryPostgres) -> str:
    # The throwaway servers run with synchronous_commit=off: a killed server would lose the
    # last commits, which is not what these tests are about.
    url = server.new_database()
    server.execute(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" SET synchronous_commit = on')
    return url


def test_a_restarted_server_is_reconnected_and_nothing_is_lost(
    own_server: TemporaryPostgres,
) -> None:
    store = TraceStore(durable_database(own_server), retry_for=60)
    before = [Task(text=f"before {i}") for i in range(300)]
    for t in before:
        store.task_queued(t)
    store.flush_sync()
    own_server.kill()
    during = [Task(text=f"during {i}") for i in range(300)]
    for t in during:
        store.task_queued(t)
        store.task_started(t.id, "echo", 1)
    restart = threading.Timer(1.0, own_server.start)  # while the writer is retrying
    restart.start()
    try:
        store.flush_sync()  # waits for the server, then everything is written
    finally:
        restart.join()
    assert store.write_errors == 0
    store.close()
    with TraceStore(store.url) as reader:
        rows = {r["id"]: r for r in reader.tasks(limit=None)}
    assert set(rows) == {t.id for t in before + during}
    assert {rows[t.id]["status"] for t in during} == {"running"}


async def test_a_server_that_stays_down_is_a_store_error_not_a_hang(
    own_server: TemporaryPostgres,
) -> None:
    store = TraceStore(durable_database(own_server), retry_for=1.5)
    kept = Task(text="kept")
    store.task_queued(kept)
    await store.flush()
    own_server.kill()
    store.task_queued(Task(text="lost"))
    started = time.monotonic()
    with pytest.raises(StoreError, match="1 of 1 writes failed: OperationalError: .*refused"):
        await store.flush()
    assert 1.5 <= time.monotonic() - started < 10  # retried for retry_for, then said so
    with pytest.raises(StoreError, match="cannot read: .*refused"):
        store.tasks()  # reads say so too
    own_server.start()
    later = Task(text="later")
    store.task_queued(later)
    await store.flush()  # the writer lives on, and reconnects
    with pytest.raises(StoreError, match="1 batch"):
        store.close()
    with TraceStore(store.url) as reader:
        assert {r["text"] for r in reader.tasks(limit=None)} == {"kept", "later"}


def test_messages_name_the_store_without_its_password(pg_url: str) -> None:
    url = pg_url.replace("postgres@", "postgres:s3cret@")  # the server trusts loopback
    with TraceStore(url) as store:
        with pytest.raises(TaskNotFound) as caught:
            store.task("nope")
    assert "s3cret" not in str(caught.value) and "postgres:***@127.0.0.1" in str(caught.value)
    assert store.url == url  # what reopens it keeps the password
