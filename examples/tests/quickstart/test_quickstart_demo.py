"""`swarm demo`, the README's main job, on the example help desk: found through the `swarm.demos`
entry points of the installed examples distribution."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm.agents import installed_demos, load_demo
from swarm.cli import main
from swarm.trace import TraceStore


@pytest.mark.parametrize("args", [["--quickstart"], ["quickstart"]])
def test_demo_runs_the_help_desk_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    r = CliRunner().invoke(
        main, ["demo", *args, "--router", "keyword", "--db", db], catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    assert "rejected" in r.output  # the out-of-scope requests
    assert "delegate orders" in r.output  # the drawn trace shows the refund's delegation
    with TraceStore(db) as store:
        (run,) = store.runs()
        assert run["kind"] == "demo" and run["agents"] == "swarm_examples.quickstart"
        tasks = store.tasks(run_id=run["id"], roots_only=True, limit=None)
        statuses = sorted(t["status"] for t in tasks)
        assert statuses.count("rejected") == 2 and statuses.count("done") == 6


def test_the_examples_install_their_demos_and_the_list_shows_them() -> None:
    assert {"bank", "quickstart"} <= set(installed_demos())
    assert load_demo("quickstart").module == "swarm_examples.quickstart"
    r = CliRunner().invoke(main, ["demo", "--list"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "bank" in r.output and "swarm_examples.quickstart:PACK" in r.output


def test_an_unknown_demo_names_the_installed_ones() -> None:
    r = CliRunner().invoke(main, ["demo", "nonesuch"])
    assert r.exit_code == 2
    assert "no demo named 'nonesuch'" in r.output and "quickstart" in r.output
