"""Two router versions for the page's agents, saved as artifacts in milliseconds: no training, a
hash encoder (no model download) and each agent's score the cosine of the text to the mean of its
examples. They keep their examples, so the page can show a decision's nearest ones."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from swarm.testing import centroid_router

from .page_agents import AGENTS


def build_versions(models_dir: Path, agents: Iterable[Any] = AGENTS) -> list[str]:
    """Save `v1-first` and `v2-second` (which serves) in `models_dir`; their names, oldest first."""
    agents = list(agents)
    centroid_router(agents, "v1-first").save(models_dir, make_current=False)
    centroid_router(agents, "v2-second").save(models_dir)
    return ["v1-first", "v2-second"]


def _gate(promoted: bool, before: float, after: float, held_out: str, size: int) -> dict[str, Any]:
    """A promotion gate's verdict as `swarm.router.learn.GateResult.to_dict()` writes it."""
    change = (after - before) * 100
    on = f"on {size} held-out texts ({held_out})"
    reason = (
        f"not worse {on}: accuracy {before:.4f} -> {after:.4f} ({change:+.2f} points; the gate "
        "allows a fall of 1.00)"
        if promoted
        else f"worse {on}: accuracy {before:.4f} -> {after:.4f} ({change:+.2f} points, more "
        "than the 1.00 the gate allows)"
    )

    def report(version: str, accuracy: float) -> dict[str, Any]:
        return {
            "version": version,
            "examples": size,
            "accuracy": accuracy,
            "macro_f1": accuracy,
            "ece": 0.05,
        }

    return {
        "promoted": promoted,
        "measured": True,
        "reason": reason,
        "tolerance": 0.01,
        "held_out": {"name": held_out, "size": size, "hash": "0a1b2c3d4e5f"},
        "before": report("before", before),
        "after": report("after", after),
    }


TRAINED, PROMOTED, KEPT_BESIDE = (
    "20261128-091500-3f2a1c",
    "20261129-141000-9b7e2d",
    "20261130-101500-c4d5e6",
)


def build_gated_versions(models_dir: Path, agents: Iterable[Any] = AGENTS) -> list[str]:
    """Three versions with the manifests training and learning write, oldest first: one trained
    (out-of-fold accuracy on its training data, no gate), one the gate promoted on suites (it
    serves), and a newer one the gate kept beside (worse on the same suites)."""
    agents = list(agents)
    oof = {"heldout_accuracy": 0.936, "heldout_examples": 250.0, "heldout_ece": 0.041}
    suites = "suites scenarios/bank"
    made = [
        (TRAINED, None),
        (PROMOTED, _gate(True, 0.1522, 0.1739, suites, 46)),
        (KEPT_BESIDE, _gate(False, 0.1739, 0.1304, suites, 46)),
    ]
    for version, promotion in made:
        router = centroid_router(agents, version)
        router.manifest["metrics"] = oof
        if promotion is not None:
            router.manifest["promotion"] = promotion
            router.manifest["parent"] = TRAINED
        router.save(models_dir, make_current=version == PROMOTED)
    return [v for v, _ in made]
