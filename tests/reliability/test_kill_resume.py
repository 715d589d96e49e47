"""A real `swarm run` of the bank, SIGKILLed at random points, then `swarm resume` (the short
form; benchmarks/reliability.py kills it at 100 points): no task lost, no side effect applied
twice (the sandbox bank's idempotency keys), both databases intact."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from harness import kill_and_resume

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_then_resume_loses_nothing_and_repeats_nothing(tmp_path: Path, seed: int) -> None:
    # 60 tasks take about a second once the first is stored: kill points spread over the run
    kill_at = random.Random(seed).uniform(0.0, 1.2)
    report = kill_and_resume(tmp_path, requests=60, kill_at_s=kill_at, seed=seed)
    assert report["resume_error"] == "", report
    assert report["lost"] == 0, report
    assert report["repeated_side_effects"] == 0, report
    assert report["integrity"] == "ok" and report["bank_integrity"] == "ok", report
