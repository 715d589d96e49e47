"""The trace store's tests run on SQLite and on PostgreSQL alike: `db_url` (and so `store`) is a
temp SQLite file or a fresh database on the session's throwaway PostgreSQL server (a few seconds to
start, once; the PostgreSQL cases skip where it is not installed, and fail in CI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'swarm.db'}"


@pytest.fixture
def sql(db_url: str) -> Callable[..., list[Any]]:
    """Run statements on the `db_url` database from outside the store (one transaction); returns
    the last one's rows."""

    def run(*statements: str) -> list[Any]:
        engine = create_engine(db_url)
        try:
            with engine.begin() as conn:
                rows: list[Any] = []
                for statement in statements:
                    result = conn.execute(text(statement))
                    rows = list(result) if result.returns_rows else []
                return rows
        finally:
            engine.dispose()

    return run
