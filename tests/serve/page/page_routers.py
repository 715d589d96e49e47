"""Two router versions for the page's agents, saved as artifacts in milliseconds: no training, a
hash encoder (no model download) and each agent's score the cosine of the text to the mean of its
examples. They keep their examples, so the page can show a decision's nearest ones."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from swarm.router import ExampleBank, Router, RoutingPolicy
from swarm.testing import HashEncoder

from .page_agents import AGENTS


def centroid_router(version: str, agents: Iterable[Any] = AGENTS) -> Router:
    """`agents`: anything with `name`, `description` and `examples` (classes or instances)."""
    agents = list(agents)
    encoder = HashEncoder(64)
    texts = [t for a in agents for t in [*a.examples, a.description]]
    labels = [a.name for a in agents for _ in [*a.examples, a.description]]
    names = [a.name for a in agents]
    vectors = encoder.encode(texts)  # (n, 64)
    centroids = np.stack(
        [vectors[[i for i, label in enumerate(labels) if label == n]].mean(0) for n in names]
    )  # (agents, 64)
    return Router(
        encoder,
        {"out.weight": (centroids.T * 20.0).astype(np.float32)},  # (64, agents)
        names,
        RoutingPolicy(oos_label=None),
        version=version,
        examples=ExampleBank(texts, labels, vectors),
    )


def build_versions(models_dir: Path, agents: Iterable[Any] = AGENTS) -> list[str]:
    """Save `v1-first` and `v2-second` (which serves) in `models_dir`; their names, oldest first."""
    agents = list(agents)
    centroid_router("v1-first", agents).save(models_dir, make_current=False)
    centroid_router("v2-second", agents).save(models_dir)
    return ["v1-first", "v2-second"]
