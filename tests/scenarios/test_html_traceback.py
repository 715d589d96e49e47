"""A failed step's trace in the HTML report shows where the agent raised (file and line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarm import Swarm, agent
from swarm.scenarios.html import _tree
from swarm.testing import FakeRouter
from swarm.trace import TraceStore


@agent(examples=["break"])
async def breaks(task: Any, ctx: Any) -> str:
    """Always fails."""
    raise ValueError("the ledger is locked")


async def test_the_trace_in_the_report_carries_the_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'swarm.db'}"
    async with Swarm([breaks], router=FakeRouter(default="breaks"), db=url) as swarm:
        result = await swarm.run("break it")
    assert not result.ok
    with TraceStore(url) as store:
        page = _tree(store.task_tree(result.task_id))
    assert "<pre class='fail'>" in page
    assert "test_html_traceback.py" in page and "line 17" in page
    assert "ValueError: the ledger is locked" in page
