"""The throwaway PostgreSQL server the PostgreSQL tests run on, and the trace store on it."""

from __future__ import annotations

from typing import Any

import pytest

from swarm.models import Task
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
