"""Training the bank's router from `training_data()` (BANKING77's training rows mapped to agents,
the agents' examples, out-of-scope requests), and reusing it while nothing it learnt from changed.

    python -m swarm.agents.bank.training storage/models/bank
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarm.agents import AgentRegistry

__all__ = ["BANK_AGENTS", "bank_registry", "bank_training_data", "ensure_bank_router"]

BANK_AGENTS = "swarm.agents.bank"
log = logging.getLogger(__name__)


def bank_registry() -> AgentRegistry:
    registry = AgentRegistry()
    registry.load_module(BANK_AGENTS)
    return registry


def bank_training_data() -> Any:
    """`training_data()` as the router's `TrainingData` (one source per kind of row)."""
    from swarm.agents.bank import AGENTS, OUT_OF_SCOPE, training_data
    from swarm.router import TrainingData

    agent_texts = {e for a in AGENTS for e in [*a.examples, a.description]}
    oos = set(OUT_OF_SCOPE)
    data = TrainingData()
    rows = training_data()
    data.add_pairs(
        ((t, lab) for t, lab in rows if t not in agent_texts and t not in oos),
        "banking77 train.csv (CC-BY-4.0)",
    )
    data.add_pairs(((t, lab) for t, lab in rows if t in agent_texts), "agent examples")
    data.add_pairs(((t, lab) for t, lab in rows if t in oos), "out of scope")
    return data


def ensure_bank_router(
    models_dir: str | Path,
    registry: AgentRegistry | None = None,
    *,
    console: Any = None,
    encoder: Any = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> Any:
    """The serving router in `models_dir` when it was trained on exactly today's bank data and
    agents; otherwise train one (minutes on a CPU the first time, the embedding cache makes later
    runs fast), save it as the current version, and return it."""
    from swarm.router import current_version, load_router
    from swarm.router.artifacts import read_manifest, resolve_artifact_dir
    from swarm.router.train import TrainConfig, train_router

    registry = registry or bank_registry()
    root = Path(models_dir)
    data = bank_training_data()
    wanted = data.fingerprint()
    version = current_version(root)
    if version is not None:
        manifest = read_manifest(resolve_artifact_dir(root))
        if (
            manifest.get("data_fingerprint") == wanted
            and manifest.get("registry_fingerprint", manifest.get("agents_fingerprint"))
            == registry.fingerprint()
        ):
            return load_router(root, registry=registry, encoder=encoder)
        reason = f"router {version} in {root} was trained on other data or agents"
    else:
        reason = f"no trained bank router in {root}"
    if console is not None:
        console.print(f"[yellow]{reason}: training one from {len(data)} examples…[/yellow]")
    log.info("%s: training from %d examples", reason, len(data))
    router, report = train_router(
        data,
        TrainConfig(),
        encoder=encoder,
        progress=progress,
        agents_fingerprint=registry.fingerprint(),
    )
    router.save(root)
    if console is not None:
        console.print(report)
    return router


def main(argv: list[str] | None = None) -> None:
    from rich.console import Console

    args = sys.argv[1:] if argv is None else argv
    ensure_bank_router(args[0] if args else "storage/models/bank", console=Console(stderr=True))


if __name__ == "__main__":
    main()
