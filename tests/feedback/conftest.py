"""The feedback tests' fixture: a store holding a real run to judge."""

from __future__ import annotations

import pytest
from feedback_run import Ran, run_help_desk


@pytest.fixture
def ran(db_url: str) -> Ran:
    return run_help_desk(db_url)
