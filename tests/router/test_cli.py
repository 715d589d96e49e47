"""`swarm router train/eval/explain`, with the hash encoder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sample_agents import AGENTS_MODULE

from swarm.cli.router import router
from swarm.errors import DataError


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = ["text,label"] + [f'"{t}",{label}' for t, label in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def files(tmp_path: Path, labelled_rows: list[tuple[str, str]]) -> tuple[Path, Path]:
    train_rows = labelled_rows
    test_rows = [
        ("my card did not arrive", "cards"),
        ("what is my balance", "accounts"),
        ("book a hotel", "travel"),
        ("tell me a funny joke", "oos"),
    ]
    return write_csv(tmp_path / "train.csv", train_rows), write_csv(
        tmp_path / "test.csv", test_rows
    )


def last_json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])


def test_train_eval_explain(files: tuple[Path, Path], tmp_path: Path) -> None:
    train_file, test_file = files
    models = tmp_path / "models"
    runner = CliRunner()
    common = [
        "--encoder",
        "hash:128",
        "--cache",
        str(tmp_path / "cache"),
        "--members",
        "3",
        "--hidden",
        "64",
    ]
    result = runner.invoke(
        router, ["train", "--data", str(train_file), "--out", str(models), *common, "--json"]
    )
    assert result.exit_code == 0, result.output
    trained = last_json(result.output)
    assert trained["sources"] == {"file train.csv": 24} and trained["labels"] == 4
    assert (models / "CURRENT").read_text().strip() == trained["version"]

    result = runner.invoke(
        router, ["eval", "--model", str(models), "--data", str(test_file), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = last_json(result.output)
    assert {"accuracy", "macro_f1", "ece", "in_scope_accuracy", "oos_recall", "auroc"} <= set(
        report
    )
    assert 0.0 <= report["accuracy"] <= 1.0 and report["examples"] == 4

    result = runner.invoke(router, ["eval", "--model", str(models), "--data", str(test_file)])
    assert result.exit_code == 0 and "macro-F1" in result.output and "per label" in result.output

    result = runner.invoke(
        router, ["explain", "block my card please", "--model", str(models), "--json"]
    )
    assert result.exit_code == 0, result.output
    explained = last_json(result.output)
    assert explained["decision"]["agent"] == "cards"
    assert explained["candidates"][0]["examples"][0]["text"] == "block my card please"

    result = runner.invoke(router, ["explain", "block my card please", "--model", str(models)])
    assert result.exit_code == 0 and "nearest" in result.output


def test_train_without_sources_is_a_usage_error() -> None:
    result = CliRunner().invoke(router, ["train"])
    assert result.exit_code == 2 and "--data FILE" in result.output


def test_bad_data_raises_a_swarm_error_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nok,a\nmissing,\n")
    result = CliRunner().invoke(
        router, ["train", "--data", str(bad), "--encoder", "hash", "--out", str(tmp_path)]
    )
    assert isinstance(result.exception, DataError)
    assert "bad.csv:3: row has no label" in str(result.exception)


def test_train_in_a_subprocess_prints_one_red_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("words,tag\nx,y\n")
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("swarm")),
            "router",
            "train",
            "--data",
            str(bad),
            "--out",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad}:1: header must name the columns 'text' and 'label' (found: words, tag)"
    ]


def test_train_from_agents_and_feedback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    from swarm.models import Task
    from swarm.trace import TraceStore

    (tmp_path / "bank_agents.py").write_text(AGENTS_MODULE)
    monkeypatch.chdir(tmp_path)
    with TraceStore(db_url) as store:
        task = Task(text="my plastic got swallowed by the machine")
        store.task_queued(task)
        store.flush_sync()
        store.record_feedback(task.id, "correction", agent="cards")
    models = tmp_path / "models"
    args = ["train", "--agents", "bank_agents", "--feedback-db", db_url, "--out", str(models)]
    args += ["--encoder", "hash:64", "--cache", str(tmp_path / "cache"), "--json"]
    result = CliRunner().invoke(router, args)
    assert result.exit_code == 0, result.output
    report = last_json(result.output)
    assert report["sources"] == {"agent examples": 8, "agent descriptions": 2, "feedback": 1}
    manifest = json.loads((models / report["version"] / "manifest.json").read_text())
    assert manifest["registry_fingerprint"] == manifest["agents_fingerprint"]

    result = CliRunner().invoke(
        router, ["explain", "block my card", "--model", str(models), "--agents", "bank_agents"]
    )
    assert result.exit_code == 0, result.output
    assert "cards" in result.output


DUPLICATE_EXAMPLES = Path("/work/shared/cases/duplicate_examples/agents.py")
"""Issue 17's case: one example text under two agents (copied below, so the test stands alone)."""

DUPLICATES_MODULE = '''
from swarm import agent

@agent(examples=["what is my balance", "show my balance", "how much money do I have",
                 "check my account balance", "balance please"], timeout=5)
async def accounts(task, ctx):
    """Account balances."""
    return "accounts"

@agent(examples=["check my account balance", "what did I spend last month", "show my statement",
                 "list my transactions", "spending summary"], timeout=5)
async def statements(task, ctx):
    """Statements and spending."""
    return "statements"

@agent(examples=["close my account"], timeout=5)
async def closing(task, ctx):
    """Account closure (a single example)."""
    return "closing"
'''


def train_args(tmp_path: Path, *extra: str) -> list[str]:
    out = ["train", "--out", str(tmp_path / "models"), "--encoder", "hash:64"]
    return [*out, "--cache", str(tmp_path / "cache"), "--members", "2", *extra]


def test_the_same_example_under_two_agents_stops_training_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dup_agents.py").write_text(DUPLICATES_MODULE)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(router, train_args(tmp_path, "--agents", "dup_agents"))
    assert isinstance(result.exception, DataError)
    assert str(result.exception) == (
        "1 training text has two labels: 'check my account balance': accounts (agent accounts) "
        "and statements (agent statements); give each text to one agent, or choose a policy "
        "(--on-conflict first|last|drop)"
    )
    assert not (tmp_path / "models").exists()

    # A policy chosen: trained, and the report says what was done, truly.
    args = train_args(tmp_path, "--agents", "dup_agents", "--on-conflict", "drop")
    result = CliRunner().invoke(router, args)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "1 text had two labels (--on-conflict drop: left them out of training)" in said
    assert "relabelled" not in said
    report = last_json(CliRunner().invoke(router, [*args, "--json"]).output)
    assert report["conflicts"] == (
        "1 text had two labels (--on-conflict drop: left them out of training)"
    )


def test_the_case_file_still_matches_the_copy_in_this_test() -> None:
    if not DUPLICATE_EXAMPLES.is_file():
        pytest.skip("the shared cases folder is not here")
    assert DUPLICATE_EXAMPLES.read_text().strip() == DUPLICATES_MODULE.strip()


def test_options_that_only_feedback_learning_reads_are_refused_for_a_new_router(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    args = train_args(tmp_path, "--data", str(files[0]), "--db", "sqlite:///x.db")
    result = CliRunner().invoke(router, args)
    assert result.exit_code == 2 and "--db names the store --feedback learns from" in result.output
    args = train_args(tmp_path, "--data", str(files[0]), "--finetune-minutes", "1")
    result = CliRunner().invoke(router, args)
    assert result.exit_code == 2 and "--finetune-minutes bounds --finetune" in result.output
    assert not (tmp_path / "models").exists()


def test_a_new_router_is_gated_against_the_one_serving_the_same_agents(
    tmp_path: Path, files: tuple[Path, Path], held_out_rows: list[tuple[str, str]]
) -> None:
    train_file, _ = files
    held_out = write_csv(tmp_path / "held.csv", held_out_rows)
    first = last_json(
        CliRunner().invoke(router, train_args(tmp_path, "--data", str(train_file), "--json")).output
    )
    assert first["promoted"] and first["reason"].startswith("no router serves these agents yet")
    # Trained again with a held-out file: measured against the first on the same 32 texts.
    args = train_args(tmp_path, "--data", str(train_file), "--eval", str(held_out), "--json")
    second = last_json(CliRunner().invoke(router, args).output)
    assert second["before"]["examples"] == second["after"]["examples"] == 32
    assert second["before"]["version"] == first["version"]
    assert second["held_out"]["name"] == f"file {held_out}"
    # A gate it cannot pass: kept beside, the first still serves.
    third = last_json(CliRunner().invoke(router, [*args, "--tolerance", "-2"]).output)
    assert third["promoted"] is False and third["serving"] is False
    assert (tmp_path / "models" / "CURRENT").read_text().strip() == second["version"]
    # Without a held-out set, a new router for the same agents serves, saying it was not measured.
    fourth = last_json(
        CliRunner().invoke(router, train_args(tmp_path, "--data", str(train_file), "--json")).output
    )
    assert fourth["serving"] is True and "promoted without a comparison" in fourth["reason"]


def test_oos_recall_sets_the_threshold_to_reject_that_share_of_held_out_oos(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    train_file, _ = files
    args = train_args(tmp_path, "--data", str(train_file), "--json", "--members", "3")
    plain = last_json(CliRunner().invoke(router, args).output)
    strict = last_json(CliRunner().invoke(router, [*args, "--oos-recall", "1.0"]).output)
    assert strict["metrics"]["heldout_oos_recall"] == 1.0
    assert strict["metrics"]["threshold"] >= plain["metrics"]["threshold"]
    no_oos = write_csv(tmp_path / "no_oos.csv", [("a b", "x"), ("c d", "y")] * 3)
    result = CliRunner().invoke(
        router, train_args(tmp_path, "--data", str(no_oos), "--oos-recall", "0.9")
    )
    assert isinstance(result.exception, DataError)
    assert "--oos-recall needs out-of-scope examples" in str(result.exception)


def test_the_cli_constants_match_the_router_package() -> None:
    from swarm.cli import router as cli
    from swarm.router.data import CONFLICT_POLICIES
    from swarm.router.learn import MIN_HELD_OUT

    assert cli.CONFLICT_POLICIES == CONFLICT_POLICIES and cli.MIN_HELD_OUT == MIN_HELD_OUT
