"""Versioned artifacts: round trip, CURRENT, corruption, mismatches, retraining for new agents."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from swarm.agents import Agent, AgentRegistry
from swarm.errors import ArtifactError
from swarm.router import (
    Router,
    current_version,
    ensure_router,
    list_versions,
    load_router,
    load_serving_router,
    set_current,
)
from swarm.testing.encoders import HashEncoder

TEXTS = ["my card has not arrived", "open a savings account", "hotel in rome", "tell me a joke"]


def test_round_trip_gives_identical_decisions(trained: Router, models_dir: Path) -> None:
    folder = trained.save(models_dir)
    assert folder.parent == models_dir and current_version(models_dir) == folder.name
    loaded = Router.load(models_dir)  # by the models folder: CURRENT
    again = Router.load(folder)  # by the version folder
    assert loaded.version == again.version == trained.version
    for a, b in zip(trained.route(TEXTS), loaded.route(TEXTS), strict=True):
        assert (a.agent, a.status, a.candidates) == (b.agent, b.status, b.candidates)
    assert loaded.examples is not None and len(loaded.examples.texts) == 24


def test_manifest_records_what_loading_needs(trained: Router, models_dir: Path) -> None:
    folder = trained.save(models_dir)
    m = json.loads((folder / "manifest.json").read_text())
    assert m["encoder"] == {
        "name": "hash:128",
        "fingerprint": trained.encoder.fingerprint,
        "dimension": 128,
    }
    assert m["labels"] == ["accounts", "cards", "oos", "travel"]
    assert m["agents"] == ["accounts", "cards", "travel"]
    assert (
        m["agents_fingerprint"]
        == AgentRegistry(_agents("accounts", "cards", "travel")).fingerprint()
    )
    assert m["policy"]["temperature"] == trained.policy.temperature
    assert m["policy"]["threshold"] == trained.policy.threshold
    assert len(m["data_fingerprint"]) == 16 and m["created_at"]
    assert "heldout_accuracy" in m["metrics"]
    assert set(m["files"]) == {"head.safetensors", "examples.safetensors", "examples.jsonl"}


def test_second_save_is_a_new_version_and_the_pointer_moves(
    trained: Router, models_dir: Path
) -> None:
    first = trained.save(models_dir).name
    second = trained.save(models_dir).name
    assert first != second and list_versions(models_dir) == sorted([first, second])
    assert current_version(models_dir) == second
    set_current(models_dir, first)
    assert Router.load(models_dir).version == first
    with pytest.raises(ArtifactError, match="no such router version"):
        set_current(models_dir, "nope")


def test_save_without_promotion_keeps_the_serving_version(
    trained: Router, models_dir: Path
) -> None:
    first = trained.save(models_dir).name
    trained.save(models_dir, make_current=False)
    assert current_version(models_dir) == first


def test_corrupt_weights_are_a_clear_error(trained: Router, models_dir: Path) -> None:
    folder = trained.save(models_dir)
    data = bytearray((folder / "head.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (folder / "head.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="corrupt artifact, head.safetensors"):
        Router.load(folder)


def test_partial_artifact_is_a_clear_error(trained: Router, models_dir: Path) -> None:
    folder = trained.save(models_dir)
    (folder / "examples.safetensors").unlink()
    with pytest.raises(ArtifactError, match="partial artifact, examples.safetensors is missing"):
        Router.load(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="no manifest.json"):
        Router.load(folder)


def test_corrupt_manifest(trained: Router, models_dir: Path) -> None:
    folder = trained.save(models_dir)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt manifest"):
        Router.load(folder)


def test_failed_save_leaves_the_previous_version_serving(
    trained: Router, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serving = trained.save(models_dir).name

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("swarm.router.artifacts.os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        trained.save(models_dir)
    monkeypatch.undo()
    assert current_version(models_dir) == serving
    assert list_versions(models_dir) == [serving]
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".tmp-")]
    assert load_serving_router(models_dir).version == serving


def test_a_different_encoder_is_refused(trained: Router, models_dir: Path) -> None:
    folder = trained.save(models_dir)
    with pytest.raises(ArtifactError, match="trained with encoder 'hash:128'.*retrain"):
        Router.load(folder, encoder=HashEncoder(128, seed=3))
    with pytest.raises(ArtifactError, match="trained with encoder"):
        Router.load(folder, encoder=HashEncoder(64))


def test_no_trained_router_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no trained router.*swarm router train --agents"):
        load_serving_router(tmp_path / "models")
    with pytest.raises(ArtifactError, match="no such router artifact"):
        Router.load(tmp_path / "missing")


class _Echo(Agent):
    async def run(self, task, ctx):  # type: ignore[no-untyped-def]
        return task.text


def _agents(*names: str) -> list[Agent]:
    made = []
    for name in names:
        a = _Echo()
        a.name = name
        a.examples = [f"{name} request number {i}" for i in range(4)] + [f"please help with {name}"]
        made.append(a)
    return made


def test_registry_mismatch_names_the_change_and_how_to_retrain(
    trained: Router, models_dir: Path
) -> None:
    trained.save(models_dir)
    same = AgentRegistry(_agents("accounts", "cards", "travel"))
    assert load_serving_router(models_dir, registry=same).labels == same.names
    changed = AgentRegistry(_agents("accounts", "cards", "loans"))
    with pytest.raises(ArtifactError) as info:
        load_serving_router(models_dir, registry=changed)
    message = str(info.value)
    assert "new agents: loans" in message and "gone: travel" in message
    assert "swarm router train --agents MODULE" in message
    with pytest.raises(ArtifactError, match="gone: travel"):
        load_router(models_dir, registry=changed)


def test_ensure_router_trains_once_for_the_registry(
    models_dir: Path, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SWARM_EMBEDDING_CACHE", str(tmp_path / "cache"))
    registry = AgentRegistry(_agents("alpha", "beta"))
    first = ensure_router(registry, models_dir, encoder=HashEncoder(64))
    assert first.labels == ["alpha", "beta"] and current_version(models_dir) == first.version
    assert first.route(["alpha request number 2"])[0].agent == "alpha"
    again = ensure_router(registry, models_dir, encoder=HashEncoder(64))
    assert again.version == first.version  # loaded, not retrained
    grown = AgentRegistry(_agents("alpha", "beta", "gamma"))
    third = ensure_router(grown, models_dir, encoder=HashEncoder(64))
    assert third.version != first.version and third.labels == ["alpha", "beta", "gamma"]


def test_switching_agent_sets_and_back_serves_the_version_trained_for_them_with_its_feedback(
    models_dir: Path, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """One models folder, two agent sets: coming back to the first serves its version, and the
    version learnt on top of it from feedback, instead of retraining from the examples."""
    from swarm.router.learn import learn

    monkeypatch.setenv("SWARM_EMBEDDING_CACHE", str(tmp_path / "cache"))
    encoder = HashEncoder(64)
    first_set = AgentRegistry(_agents("alpha", "beta"))
    first = ensure_router(first_set, models_dir, encoder=encoder)
    text = "a question nobody wrote down"
    rows = [{"kind": "correction", "text": text, "routed_agent": None, "agent": "beta"}]
    learnt = learn(models_dir, base=first, feedback_rows=rows, min_held_out=1,
                   held_out=_held_out_for("alpha", "beta"))  # fmt: skip
    assert learnt.made_current and learnt.router.version != first.version

    other = ensure_router(AgentRegistry(_agents("gamma", "delta")), models_dir, encoder=encoder)
    assert current_version(models_dir) == other.version and other.labels == ["delta", "gamma"]
    back = ensure_router(first_set, models_dir, encoder=encoder)
    assert back.version == learnt.router.version == current_version(models_dir)
    assert text in back.examples.texts
    assert len(list_versions(models_dir)) == 3  # nothing retrained

    # A pack's extra rows are part of what a version was trained on: other rows, a new version.
    from swarm.router import TrainingData

    extra = TrainingData()
    extra.add_pairs([("one more alpha request", "alpha")], "pack rows")
    with_rows = ensure_router(first_set, models_dir, training=extra, encoder=encoder)
    assert with_rows.version not in (first.version, learnt.router.version)
    assert "one more alpha request" in with_rows.examples.texts
    assert ensure_router(first_set, models_dir, training=extra, encoder=encoder).version == (
        with_rows.version
    )

    # `router versions` says which agents each version serves.
    from click.testing import CliRunner

    from swarm.cli import main

    listed = CliRunner().invoke(
        main, ["router", "versions", "--models-dir", str(models_dir), "--json"]
    )
    rows_ = json.loads(listed.output.strip().splitlines()[-1])["versions"]
    assert [r["agents"] for r in rows_] == [
        ["alpha", "beta"], ["alpha", "beta"], ["delta", "gamma"], ["alpha", "beta"]
    ]  # fmt: skip


def _held_out_for(*names: str) -> object:
    from swarm.router.learn import HeldOut

    return HeldOut.of("t", [(f"{n} request number {i} again", n) for n in names for i in range(3)])


def test_examples_are_stored_for_explain(trained: Router, models_dir: Path) -> None:
    loaded = Router.load(trained.save(models_dir))
    assert loaded.examples is not None and trained.examples is not None
    assert loaded.examples.texts == trained.examples.texts
    np.testing.assert_allclose(loaded.examples.embeddings, trained.examples.embeddings, atol=1e-3)
    assert os.path.getsize(Path(models_dir) / loaded.version / "examples.safetensors") > 0


def test_ensure_router_never_serves_a_version_the_gate_kept_beside_unless_chosen(
    models_dir: Path, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from swarm.router.learn import learn

    monkeypatch.setenv("SWARM_EMBEDDING_CACHE", str(tmp_path / "cache"))
    encoder = HashEncoder(64)
    registry = AgentRegistry(_agents("alpha", "beta"))
    first = ensure_router(registry, models_dir, encoder=encoder)
    rows = [{"kind": "correction", "text": "something new", "routed_agent": None, "agent": "beta"}]
    kept = learn(models_dir, base=first, feedback_rows=rows)  # nothing held out: kept beside
    assert not kept.gate.promoted and current_version(models_dir) == first.version
    other = AgentRegistry(_agents("gamma", "delta"))
    ensure_router(other, models_dir, encoder=encoder)
    assert ensure_router(registry, models_dir, encoder=encoder).version == first.version
    # A person chose it (`swarm router use`): it serves, and coming back keeps it.
    set_current(models_dir, kept.router.version)
    assert ensure_router(registry, models_dir, encoder=encoder).version == kept.router.version
