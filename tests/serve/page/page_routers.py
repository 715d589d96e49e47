"""Two router versions for the page's agents, saved as artifacts in milliseconds: no training, a
hash encoder (no model download) and each agent's score the cosine of the text to the mean of its
examples. They keep their examples, so the page can show a decision's nearest ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swarm.router import ExampleBank, Router, RoutingPolicy
from swarm.testing import HashEncoder

from .page_agents import AGENTS


def centroid_router(version: str) -> Router:
    encoder = HashEncoder(64)
    texts = [t for a in AGENTS for t in [*a.examples, a.description]]
    labels = [a.name for a in AGENTS for _ in [*a.examples, a.description]]
    names = [a.name for a in AGENTS]
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


def build_versions(models_dir: Path) -> list[str]:
    """Save `v1-first` and `v2-second` (which serves) in `models_dir`; their names, oldest first."""
    centroid_router("v1-first").save(models_dir, make_current=False)
    centroid_router("v2-second").save(models_dir)
    return ["v1-first", "v2-second"]
