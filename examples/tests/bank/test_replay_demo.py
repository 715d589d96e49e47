"""Replay fidelity over the whole bank demo: every suite run of the demo, replayed with its
recorded tool answers (refusals, retryable glitches and tool errors among them), reports no
change."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from rich.console import Console

from swarm.agents import AgentRegistry, load_pack
from swarm.cli.demo import run_demo
from swarm.scenarios import replay_run
from swarm.testing import KeywordRouter
from swarm.trace import TraceStore

PACK = load_pack("swarm_examples.bank")


@pytest.mark.slow
def test_replaying_the_unchanged_bank_demo_reports_no_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_BANK_DB", f"sqlite:///{tmp_path / 'bank' / 'sandbox.db'}")
    registry = AgentRegistry()
    registry.add_pack(PACK)
    out = Console(file=io.StringIO(), width=120, color_system=None)
    assert PACK.suites is not None
    suites = [p for p in sorted(PACK.suites.glob("*.yaml")) if p.name != "bank_routing.yaml"]
    db = f"sqlite:///{tmp_path / 'swarm.db'}"
    passed = run_demo(
        PACK,
        out,
        db,
        tmp_path / "models",
        tmp_path / "r.html",
        suites=suites,
        router=KeywordRouter(registry),
    )
    assert passed, out.file.getvalue()  # type: ignore[attr-defined]
    store = TraceStore(db)
    try:
        runs = [r["id"] for r in store.runs(limit=100)]
        failed_tools = [
            s for r in runs for s in store.spans(run_id=r, kind="tool") if s["status"] == "error"
        ]
        # The demo must exercise the kind of fault this test is about: tools that raised.
        kinds = {s["attributes"]["exception"]["type"].rsplit(":", 1)[-1] for s in failed_tools}
        assert {"BankRefusal", "Retryable", "ToolError"} <= kinds

        async def replay_all() -> list[tuple[int, dict[str, int], int]]:
            found = []
            for run in runs:
                outcome = await replay_run(store, run, router=KeywordRouter(registry))
                found.append((outcome.diff.compared, outcome.diff.counts, outcome.tools_served))
            return found

        results = asyncio.run(replay_all())
    finally:
        store.close()
    assert sum(compared for compared, _, _ in results) >= 50
    assert [counts for _, counts, _ in results] == [{}] * len(runs)
    assert sum(served for _, _, served in results) >= len(failed_tools)
