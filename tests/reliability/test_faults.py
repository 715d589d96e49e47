"""Faults at scale (the short form; benchmarks/reliability.py runs 10,000 tasks): every task ends
in a terminal state, nothing hangs, every row reaches the store, the database stays intact."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import run_faults

pytestmark = pytest.mark.slow


async def test_every_faulty_task_ends_and_is_stored(tmp_path: Path) -> None:
    report = await run_faults(tmp_path / "swarm.db", 600, fault_rate=0.1, seed=3, limit_s=120)
    results = report["results"]
    assert set(results["ok"]) == {"done"}, results
    assert set(results.get("raise", {})) <= {"failed"}, results
    assert set(results.get("hang", {})) <= {"failed"}, results
    assert set(results.get("swallow", {})) <= {"failed"}, results  # deadline fired: not done
    assert set(results.get("unencodable", {})) <= {"done"}, results
    # every task has its row, finished: none left queued or running for a resume to redo
    assert report["stored"] == {
        status: sum(r.get(status, 0) for r in results.values())
        for status in {s for r in results.values() for s in r}
    }
    assert sum(report["stored"].values()) == 600
    assert report["integrity"] == "ok"


async def test_a_slow_store_delays_but_loses_nothing(tmp_path: Path) -> None:
    """Another connection holds SQLite's write lock for two seconds mid-run."""
    report = await run_faults(
        tmp_path / "swarm.db", 300, fault_rate=0.1, seed=4, slow_store_s=2.0, limit_s=120
    )
    assert sum(report["stored"].values()) == 300
    assert set(report["stored"]) <= {"done", "failed"}
    assert report["integrity"] == "ok"
