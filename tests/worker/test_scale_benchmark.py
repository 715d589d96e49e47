"""`benchmarks/scale.py` at CI size: it runs (one process, two workers on a throwaway PostgreSQL),
loses nothing, runs nothing twice, and draws its plot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_the_scale_benchmark_runs_at_ci_size(tmp_path: Path, postgres_server: object) -> None:
    # postgres_server: skips where PostgreSQL is not installed (the script starts its own).
    plot = tmp_path / "scale.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--tasks", "300", "--workers",
         "2", "--no-sqlite", "--io-ms", "5", "--cpu-ms", "0.5", "--plot", str(plot)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env=dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    names = [c["name"] for c in summary["configs"]]
    assert names == ["1 process (pg)", "2 workers (pg)"]
    for config in summary["configs"]:
        assert config["lost"] == 0 and config["twice"] == 0, config
        assert config["tasks_per_s"] > 0 and config["p95_ms"] >= config["p50_ms"] > 0
    assert plot.stat().st_size > 10_000
