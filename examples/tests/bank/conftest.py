"""Fixtures for the bank packs: a freshly seeded sandbox bank in tmp_path and a swarm over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from swarm_examples.bank.db import Bank


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[Bank]:
    b = Bank.create(f"sqlite:///{tmp_path / 'sandbox.db'}")
    yield b
    b.close()
