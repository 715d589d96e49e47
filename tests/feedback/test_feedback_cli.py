"""`swarm feedback` through CliRunner for the matrix of verdicts, names and manifests, and once
through the installed console script against a real database file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from feedback_run import Ran

from swarm.cli import main
from swarm.trace import TraceStore

SWARM = str(Path(sys.executable).with_name("swarm"))
QUICKSTART = "swarm_examples.quickstart"


def write_manifest(folder: Path, agents: list[str]) -> None:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"version": folder.name, "agents": agents}))


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """The keyword router's "version" with the help desk's agents, as a trained one would have."""
    root = tmp_path / "models"
    write_manifest(root / "keyword", ["accounts", "billing", "orders", "tech_support"])
    return root


def feedback(db_url: str, *args: str, models_dir: Path | None = None) -> Result:
    where = ["--db", db_url, "--models-dir", str(models_dir or "no-such-models")]
    # Wide: the error console would wrap a long line at 80 columns.
    runner = CliRunner(env={"COLUMNS": "300"})
    return runner.invoke(main, ["feedback", *args, *where], catch_exceptions=False)


@pytest.mark.parametrize(
    ("args", "kind", "agent", "said"),
    [
        (["good"], "good", None, "marked good"),
        (["bad"], "bad", None, "marked bad"),
        (["--agent", "billing"], "correction", "billing", "marked bad; should be: billing"),
        (["bad", "--agent", "billing"], "correction", "billing", "marked bad; should be: billing"),
        (["bad", "--agent", "oos"], "correction", "oos", "marked bad; should be: out of scope"),
    ],
)
def test_verdicts(
    ran: Ran,
    db_url: str,
    models: Path,
    args: list[str],
    kind: str,
    agent: str | None,
    said: str,
) -> None:
    r = feedback(db_url, ran.order[:-4], *args, models_dir=models)
    assert r.exit_code == 0, r.output
    said = f'recorded: task {ran.order} "where is my order" routed to orders {said}'
    assert r.output.splitlines()[0] == said
    assert "`swarm router train --feedback` learns from it" in r.output
    with TraceStore(db_url) as store:
        (row,) = store.feedback()
    assert (row["task_id"], row["kind"], row["agent"], row["routed_agent"]) == (
        ran.order,
        kind,
        agent,
        "orders",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "say good or bad, or name the agent that should have taken it"),
        (["good", "--agent", "billing"], "good takes no --agent; for a correction: bad --agent"),
        (["fine"], "'fine' is not one of 'good', 'bad'"),
    ],
)
def test_usage_errors(ran: Ran, db_url: str, models: Path, args: list[str], message: str) -> None:
    r = feedback(db_url, ran.order, *args, models_dir=models)
    assert r.exit_code == 2
    assert message in r.output
    with TraceStore(db_url) as store:
        assert store.feedback() == []


def test_json_is_the_record_on_the_last_line(ran: Ran, db_url: str, models: Path) -> None:
    args = ["bad", "--agent", "tech_support", "--note", "x", "--json"]
    r = feedback(db_url, ran.joke, *args, models_dir=models)
    assert r.exit_code == 0, r.output
    record = json.loads(r.output.strip().splitlines()[-1])
    assert record == {
        "id": 1,
        "task_id": ran.joke,
        "kind": "correction",
        "agent": "tech_support",
        "routed_agent": None,
        "text": "tell me a joke about cats",
        "router_version": "keyword",
        "note": "x",
    }


def test_an_unknown_task_is_one_error_line(ran: Ran, db_url: str) -> None:
    r = feedback(db_url, "nope", "good")
    assert r.exit_code == 2
    assert r.output.splitlines() == [f"error: no task with id 'nope' in {db_url}"]


def test_names_are_checked_against_the_deciding_routers_manifest(
    ran: Ran, db_url: str, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    write_manifest(models / "bank" / "keyword", ["billing", "orders"])  # a pack's own folder
    write_manifest(models / "v1", ["other"])
    (models / "CURRENT").write_text("v1\n")
    r = feedback(db_url, ran.order, "--agent", "accounts", models_dir=models)
    assert r.exit_code == 2
    assert "no agent named 'accounts' (agents: billing, orders;" in r.output
    assert feedback(db_url, ran.order, "--agent", "billing", models_dir=models).exit_code == 0


def test_the_serving_version_when_the_deciding_one_is_gone(
    ran: Ran, db_url: str, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    write_manifest(models / "v1", ["billing", "orders", "shipping"])
    (models / "CURRENT").write_text("v1\n")
    # The forced task's decision names no router: only the serving version can say.
    assert feedback(db_url, ran.forced, "--agent", "shipping", models_dir=models).exit_code == 0
    r = feedback(db_url, ran.order, "--agent", "accounts", models_dir=models)
    assert r.exit_code == 2
    assert "agents: billing, orders, shipping" in r.output


def test_without_a_manifest_it_asks_for_the_agents_module(
    ran: Ran, db_url: str, tmp_path: Path
) -> None:
    r = feedback(db_url, ran.order, "--agent", "billing", models_dir=tmp_path / "empty")
    assert r.exit_code == 2
    assert "router keyword decided this task" in r.output
    assert "pass --agents MODULE" in r.output
    ok = feedback(db_url, ran.order, "--agent", "billing", "--agents", QUICKSTART)
    assert ok.exit_code == 0, ok.output
    wrong = feedback(db_url, ran.order, "--agent", "biling", "--agents", QUICKSTART)
    assert wrong.exit_code == 2
    assert (
        "did you mean 'billing'? (agents: accounts, billing, orders, tech_support;" in wrong.output
    )
    with TraceStore(db_url) as store:
        assert [r["agent"] for r in store.feedback()] == ["billing"]


def test_good_or_bad_on_a_task_nothing_routed(ran: Ran, db_url: str) -> None:
    r = feedback(db_url, ran.unrouted, "good")
    assert r.exit_code == 2
    assert f"task {ran.unrouted} was never routed" in r.output
    forced = feedback(db_url, ran.forced, "bad")
    assert forced.exit_code == 0 and "routed to billing marked bad" in forced.output


def test_the_installed_command_against_a_database_file(
    ran: Ran, db_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "SWARM_DB": db_url, "COLUMNS": "200"}

    def swarm(*args: str) -> subprocess.CompletedProcess[str]:
        command = [SWARM, "feedback", *args]
        return subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    done = swarm(ran.order[:-4], "bad", "--agent", "billing", "--agents", QUICKSTART)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f'recorded: task {ran.order} "where is my order" routed to orders marked bad; '
        "should be: billing"
    )
    refused = swarm(ran.order, "bad", "--agent", "biling", "--agents", QUICKSTART)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "error: no agent named 'biling'; did you mean 'billing'? (agents: accounts, billing, "
        "orders, tech_support; 'oos': no agent should take it)"
    ]
    with TraceStore(db_url) as store:
        assert store.labelled_feedback() == [("where is my order", "billing")]
