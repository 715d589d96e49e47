"""Shared fixtures: a temp-file trace store, a virtual clock, a fixed-width console."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

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
