"""Two tiny router versions for the page's agents, trained on a hash encoder (no model download)."""

from __future__ import annotations

from pathlib import Path

from swarm.router import TrainingData
from swarm.router.artifacts import save_router_artifact
from swarm.router.model import HeadConfig
from swarm.router.train import TrainConfig, train_router
from swarm.testing.encoders import HashEncoder

from .page_agents import AGENTS

FAST_HEAD = HeadConfig(hidden=32, members=1, max_epochs=30, patience=5, batch_size=16)


def build_versions(models_dir: Path, cache_dir: Path) -> list[str]:
    """Train and save two versions (the second serves); returns their names, oldest first."""
    names = []
    for extra in ([], ["where is my card", "check my balance"]):
        data = TrainingData()
        for agent in AGENTS:
            data.add_pairs([(t, agent.name) for t in agent.examples], f"{agent.name} examples")
        data.add_pairs([(t, "cards" if "card" in t else "accounts") for t in extra], "extra")
        router, _ = train_router(
            data, TrainConfig(head=FAST_HEAD), encoder=HashEncoder(64), cache_dir=cache_dir
        )
        names.append(save_router_artifact(router, models_dir).name)
    return names
