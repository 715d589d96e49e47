"""`swarm router train --feedback`, `swarm router versions` and `swarm router use`."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sample_agents import AGENTS_MODULE

from swarm.cli import main
from swarm.errors import ArtifactError
from swarm.feedback import record_feedback
from swarm.models import Task
from swarm.router import Router, current_version, list_versions
from swarm.router.train import train_router
from swarm.trace import TraceStore


def last_json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows))
    return path


def routed_tasks(router: Router, db_url: str, texts: list[str]) -> dict[str, str]:
    """Route `texts` with `router` and store task and decision rows, as a run would: text -> id."""
    ids = {}
    with TraceStore(db_url) as store:
        for text, decision in zip(texts, router.route(texts), strict=True):
            task = Task(text=text)
            store.task_queued(task)
            store.record_decision(task.id, decision)
            ids[text] = task.id
    return ids


@pytest.fixture
def serving(make_data, fast_config, encoder, models_dir: Path) -> Router:  # type: ignore[no-untyped-def]
    """A hash-encoder router saved as `hash:128`, so the CLI loads the same encoder by name."""
    router, _ = train_router(make_data(), fast_config, encoder=encoder, cache_dir="")
    # A threshold set by hand: the hash encoder's confidences sit near one chosen on 24 texts.
    router.policy = dataclasses.replace(router.policy, threshold=0.3)
    router.save(models_dir)
    return router


def test_train_feedback_reports_promotes_and_rolls_back(
    serving: Router, models_dir: Path, db_url: str, tmp_path: Path, held_out_rows
) -> None:  # type: ignore[no-untyped-def]
    texts = ["my plastic got eaten by the machine", "book a flight to paris", "tell me a joke"]
    ids = routed_tasks(serving, db_url, texts)
    with TraceStore(db_url) as store:
        record_feedback(store, ids[texts[0]], "correction", agent="cards")
        record_feedback(store, ids[texts[1]], "good")
        record_feedback(store, ids[texts[2]], "good")
        record_feedback(store, ids[texts[2]], "bad")  # the same routing called right and wrong
    # The held-out file also holds a text the new version trains on (the correction, spelt
    # otherwise): the gate leaves it out.
    held_out = write_csv(
        tmp_path / "held_out.csv", [*held_out_rows, (texts[0].upper() + "  ", "cards")]
    )
    args = ["router", "train", "--feedback", "--db", db_url, "--out", str(models_dir)]
    args += ["--min-held-out", "10"]
    result = CliRunner().invoke(main, [*args, "--eval", str(held_out), "--json"])
    assert result.exit_code == 0, result.output
    report = last_json(result.output)
    assert report["feedback"] == {
        "rows": 4,
        "good": 1,
        "bad": 0,
        "corrections": 1,
        "contradictory_texts": 1,
        "skipped": 0,
    }
    assert report["contradictions"] == [
        {
            "text": texts[2],
            "verdicts": [f"good for {serving.route([texts[2]])[0].agent or 'oos'}"]
            + [f"bad for {serving.route([texts[2]])[0].agent or 'oos'}"],
        }
    ]
    assert set(report["contributions"]) == {"corrections", "bandit", "together"}
    assert report["promoted"] is True and report["serving"] is True
    # Half of the 32 texts it did not train on refit the temperature, half measured.
    assert report["before"]["examples"] == report["after"]["examples"] == 16
    assert report["held_out"]["name"] == f"file {held_out} (measuring half)"
    assert report["held_out"]["temperature_refit_on"]["size"] == 16
    assert current_version(models_dir) == report["version"]
    assert Router.load(models_dir).route([texts[0]])[0].agent == "cards"

    result = CliRunner().invoke(main, ["router", "versions", "--models-dir", str(models_dir)])
    assert result.exit_code == 0, result.output
    assert "promoted" in result.output and serving.version in result.output
    assert "measuring half" in " ".join(result.output.split())
    listed = last_json(
        CliRunner()
        .invoke(main, ["router", "versions", "--models-dir", str(models_dir), "--json"])
        .output
    )
    assert listed["serving"] == report["version"]
    assert [v["parent"] for v in listed["versions"]] == [None, serving.version]
    assert all(v["agents"] == ["accounts", "cards", "travel"] for v in listed["versions"])
    first, second = listed["versions"]
    assert first["measured_on"]["name"] == "out-of-fold training examples"
    assert second["measured_on"]["size"] == 16 and len(second["measured_on"]["hash"]) == 12

    # Roll back by a unique prefix of the version.
    result = CliRunner().invoke(
        main, ["router", "use", serving.version[:-2], "--models-dir", str(models_dir)]
    )
    assert result.exit_code == 0, result.output
    assert current_version(models_dir) == serving.version
    assert f"swarm router use {report['version']}" in result.output


def _one_good_mark(
    serving: Router, db_url: str, models_dir: Path, tmp_path: Path, held_out_rows: list[Any]
) -> tuple[list[str], Path]:
    """One routed task marked good, a held-out file, and `router train --feedback`'s arguments."""
    ids = routed_tasks(serving, db_url, ["block my card please"])
    with TraceStore(db_url) as store:
        record_feedback(store, next(iter(ids.values())), "good")
    held_out = write_csv(tmp_path / "held_out.csv", held_out_rows)
    return ["router", "train", "--feedback", "--db", db_url, "--out", str(models_dir)], held_out


def test_a_version_that_fails_the_gate_is_kept_beside_with_the_reason(
    serving: Router, models_dir: Path, db_url: str, tmp_path: Path, held_out_rows
) -> None:  # type: ignore[no-untyped-def]
    args, held_out = _one_good_mark(serving, db_url, models_dir, tmp_path, held_out_rows)
    # A negative tolerance demands a gain of 50 points: none comes.
    result = CliRunner().invoke(main, [*args, "--eval", str(held_out), "--tolerance", "-0.5"])
    assert result.exit_code == 0, result.output
    assert "kept beside" in result.output and "still serves" in result.output
    assert current_version(models_dir) == serving.version
    assert len(list_versions(models_dir)) == 2
    kept = [v for v in list_versions(models_dir) if v != serving.version][0]
    manifest = json.loads((models_dir / kept / "manifest.json").read_text())
    assert manifest["promotion"]["promoted"] is False
    assert "more than the -50.00 the gate allows" in manifest["promotion"]["reason"]


def test_held_out_from_scenario_suites(
    serving: Router, models_dir: Path, db_url: str, tmp_path: Path
) -> None:
    suite = tmp_path / "suites" / "desk.yaml"
    suite.parent.mkdir()
    suite.write_text(
        "name: desk\nagents: some.module\nscenarios:\n"
        "  - name: card\n    steps:\n"
        "      - user: my card still has not arrived\n        expect: {agent: cards}\n"
        "  - name: joke\n    steps:\n"
        "      - user: tell me a funny joke\n        expect: {out_of_scope: true}\n"
        "  - name: forced\n    steps:\n"
        "      - user: anything\n        agent: travel\n"
        "  - name: other swarm\n    steps:\n"
        "      - user: refund please\n        expect: {agent: billing}\n"
    )
    ids = routed_tasks(serving, db_url, ["book a hotel"])
    with TraceStore(db_url) as store:
        record_feedback(store, next(iter(ids.values())), "good")
    args = ["router", "train", "--feedback", "--db", db_url, "--out", str(models_dir)]
    args += ["--suite", str(suite.parent), "--json"]
    # Routed steps with an expectation for this router's agents: the card and the joke; too few
    # for the gate to claim a result.
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = last_json(result.output)
    assert report["promoted"] is False and report["before"] is None
    assert report["reason"].startswith("not enough held-out data (2 of 2 held-out texts")
    assert report["held_out"]["size"] == 2
    assert current_version(models_dir) == serving.version
    # A smaller minimum, asked for: measured on those two.
    result = CliRunner().invoke(main, [*args, "--min-held-out", "2"])
    assert last_json(result.output)["before"]["examples"] == 2


def test_no_current_is_honoured_with_feedback(
    serving: Router, models_dir: Path, db_url: str, tmp_path: Path, held_out_rows
) -> None:  # type: ignore[no-untyped-def]
    args, held_out = _one_good_mark(serving, db_url, models_dir, tmp_path, held_out_rows)
    result = CliRunner().invoke(main, [*args, "--eval", str(held_out), "--no-current", "--json"])
    assert result.exit_code == 0, result.output
    report = last_json(result.output)
    assert report["promoted"] is True and report["serving"] is False
    assert current_version(models_dir) == serving.version
    assert report["version"] in list_versions(models_dir)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "x.csv"], "--data configures training a new one"),
        (["--encoder", "hash:64", "--members", "2"], "--encoder, --members configure training"),
        (["--on-conflict", "first"], "--on-conflict configures training a new one"),
        (["--oos-recall", "0.9"], "--oos-recall configures"),
        ([], "no usable feedback in 0 rows"),
        (["--eval", "missing.csv"], "missing.csv: no such file"),
    ],
)
def test_feedback_training_errors(
    serving: Router, models_dir: Path, db_url: str, tmp_path: Path, extra, message
) -> None:  # type: ignore[no-untyped-def]
    held_out = write_csv(tmp_path / "h.csv", [("block my card", "cards")])
    args = ["router", "train", "--feedback", "--db", db_url, "--out", str(models_dir)]
    if "--eval" not in extra:
        extra = [*extra, "--eval", str(held_out)]
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert list_versions(models_dir) == [serving.version]


def test_use_an_unknown_version_is_an_error(serving: Router, models_dir: Path) -> None:
    result = CliRunner().invoke(main, ["router", "use", "1999", "--models-dir", str(models_dir)])
    assert result.exit_code == 2 and "'1999' is not a version" in result.output
    assert current_version(models_dir) == serving.version


@pytest.mark.slow
def test_newcomer_flow_with_the_real_encoder(tmp_path: Path) -> None:
    """Run a request, mark its routing wrong, learn from it, see it fixed, roll back: the real
    encoder, a real SQLite file and the installed `swarm` command in subprocesses."""
    (tmp_path / "desk_agents.py").write_text(AGENTS_MODULE)
    cards = [
        "my card was stolen",
        "the new card did not come",
        "please block the card",
        "I need another card",
        "someone took my card",
        "my card is lost",
        "cancel my card",
        "where is the card you sent",
        "freeze my card",
        "card delivery",
    ]
    travel = [
        "book me a flight to rome",
        "a hotel in paris please",
        "cancel the flight",
        "two nights in a hotel",
        "flights to berlin",
        "find a cheap hotel",
        "change my flight",
        "book a room",
        "a flight tomorrow morning",
        "hotel near the sea",
    ]
    write_csv(
        tmp_path / "held_out.csv",
        [(t, "cards") for t in cards] + [(t, "travel") for t in travel],
    )  # fmt: skip
    swarm = str(Path(sys.executable).with_name("swarm"))
    env = {**os.environ, "SWARM_DB": f"sqlite:///{tmp_path / 'traces.db'}"}

    def cli(*args: str, ok: tuple[int, ...] = (0,)) -> dict:  # type: ignore[type-arg]
        proc = subprocess.run(
            [swarm, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode in ok, proc.stdout + proc.stderr
        return last_json(proc.stdout)

    text = "the machine swallowed my plastic"
    # Far from every example: rejected as out of scope (exit 1) or misrouted; either is corrected.
    ran = cli("run", "--agents", "desk_agents", "--json", text, ok=(0, 1))
    first = current_version(tmp_path / "storage" / "models")
    task_id = ran["results"][0]["task_id"]
    cli("feedback", task_id, "--agent", "cards", "--agents", "desk_agents", "--json")
    learnt = cli("router", "train", "--feedback", "--eval", "held_out.csv", "--json")
    assert learnt["feedback"]["corrections"] == 1 and learnt["promoted"] is True
    again = cli("run", "--agents", "desk_agents", "--json", text)
    assert again["results"][0]["agent"] == "cards"
    cli("router", "versions", "--json")
    proc = subprocess.run(
        [swarm, "router", "use", first], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert current_version(tmp_path / "storage" / "models") == first


def test_a_folder_of_routers_names_them_instead_of_calling_them_corrupt(
    serving: Router, models_dir: Path, db_url: str
) -> None:
    """`swarm demo` keeps each pack's router in storage/models/NAME: the parent is no router."""
    parent = models_dir.parent
    with pytest.raises(ArtifactError, match=r"holds the routers of: models; name one") as exc:
        Router.load(parent)
    assert "corrupt" not in str(exc.value)
    args = ["router", "train", "--feedback", "--db", db_url, "--out", str(parent)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert f"holds the routers of: models; pass --out {models_dir}" in result.output


def test_feedback_on_a_demos_router_defaults_to_that_demos_suites(tmp_path: Path) -> None:
    from swarm.cli.router import _demo_suites

    [bank] = _demo_suites(str(tmp_path / "bank"))  # storage/models/bank: `swarm demo bank`'s
    assert Path(bank).parts[-3:] == ("swarm_examples", "bank", "suites")
    assert _demo_suites(str(tmp_path / "models")) == ()
