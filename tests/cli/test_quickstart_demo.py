"""`swarm demo`, the README's main job, on the example help desk."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm.cli import main
from swarm.trace import TraceStore


def test_demo_runs_the_help_desk_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    r = CliRunner().invoke(
        main, ["demo", "--quickstart", "--router", "keyword", "--db", db], catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    assert "rejected" in r.output  # the out-of-scope requests
    assert "delegate orders" in r.output  # the drawn trace shows the refund's delegation
    with TraceStore(db) as store:
        (run,) = store.runs()
        assert run["kind"] == "demo" and run["agents"] == "swarm.examples.quickstart"
        tasks = store.tasks(run_id=run["id"], roots_only=True, limit=None)
        statuses = sorted(t["status"] for t in tasks)
        assert statuses.count("rejected") == 2 and statuses.count("done") == 6
