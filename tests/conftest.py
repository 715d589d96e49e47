"""Shared fixtures: a temp-file trace store, a virtual clock, a fixed-width console."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from swarm.testing import VirtualClock
from swarm.trace import TraceStore


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'swarm.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[TraceStore]:
    s = TraceStore(db_url)
    yield s
    s.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def console() -> Console:
    return Console(file=io.StringIO(), width=100, color_system=None, highlight=False)


def rendered(console: Console) -> str:
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One throwaway PostgreSQL server for the whole session (swarm.testing.postgres).

    Skips where PostgreSQL is not installed, except in CI (`CI` set), where that fails."""
    from swarm.testing.postgres import PostgresUnavailable, TemporaryPostgres

    try:
        server = TemporaryPostgres()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    with server:
        yield server


@pytest.fixture
def pg_url(postgres_server: Any) -> str:
    """A SQLAlchemy URL of a new, empty database on the session's PostgreSQL server."""
    return str(postgres_server.new_database())
