"""The bank demo end to end with the keyword router (the learned one is trained in the slow test):
sandbox seeded, suites run and passing, the HTML report on disk, the console hint printed."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from swarm.agents import AgentRegistry, load_pack
from swarm.cli.demo import run_demo
from swarm.paths import DEFAULT_MODELS_DIR
from swarm.testing import KeywordRouter

PACK = load_pack("swarm_examples.bank")  # as `--agents` loads it: the module path is known


def test_demo_runs_the_bank_suites_and_writes_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_BANK_DB", f"sqlite:///{tmp_path / 'bank' / 'sandbox.db'}")
    out = Console(file=io.StringIO(), width=120, color_system=None)
    assert PACK.suites is not None
    suites = [p for p in sorted(PACK.suites.glob("*.yaml")) if p.name != "bank_routing.yaml"]
    assert {p.name for p in suites} >= {"bank_actions.yaml", "ops_desk.yaml"}
    registry = AgentRegistry()
    registry.add_pack(PACK)
    passed = run_demo(
        PACK,
        out,
        f"sqlite:///{tmp_path / 'swarm.db'}",
        tmp_path / "models",
        tmp_path / "report.html",
        suites=suites,
        router=KeywordRouter(registry),
    )
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert passed, text
    assert (tmp_path / "report.html").stat().st_size > 1000
    assert (tmp_path / "bank" / "sandbox.db").exists()
    assert "sandbox bank seeded at" in text
    assert "swarm console --agents swarm_examples.bank" in text


@pytest.mark.slow
def test_learned_bank_router_passes_the_routing_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trains the real bank router into storage/models/bank unless it is there for today's data
    (2-4 minutes on 2 cores; suites/bank_routing.yaml then reuses it) and runs every bank
    suite through it, BANKING77 routing checks included."""
    monkeypatch.setenv("SWARM_BANK_DB", f"sqlite:///{tmp_path / 'sandbox.db'}")
    models = os.environ.get("SWARM_MODELS_DIR", DEFAULT_MODELS_DIR)  # the bank keeps PACK/bank
    out = Console(file=io.StringIO(), width=120, color_system=None)
    passed = run_demo(
        PACK, out, f"sqlite:///{tmp_path / 'swarm.db'}", models, tmp_path / "r.html"
    )
    assert passed, out.file.getvalue()  # type: ignore[attr-defined]
