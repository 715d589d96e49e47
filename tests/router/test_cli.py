"""`swarm router train/eval/explain` and `python -m swarm.router.train`, with the hash encoder."""

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


def test_module_entry_point_prints_one_red_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("words,tag\nx,y\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "swarm.router.train",
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
