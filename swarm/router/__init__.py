"""The learned router: a sentence encoder and a small trained head that send each task to an agent,
reject what no agent should take, say when it is unsure, and explain themselves.

Serving (`Router`, `load_serving_router`) imports numpy only; training imports torch when called.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from swarm.errors import ArtifactError
from swarm.router.artifacts import (
    RETRAIN_HINT,
    current_version,
    list_versions,
    read_manifest,
    resolve_artifact_dir,
    set_current,
)
from swarm.router.data import DEFAULT_OOS_LABEL, LabelledExample, TrainingData, read_labelled_file
from swarm.router.encoders import (
    DEFAULT_ENCODER,
    CachedEncoder,
    EmbeddingCache,
    Encoder,
    SentenceTransformerEncoder,
    load_encoder,
    register_encoder,
)
from swarm.router.feedback import learn_from_feedback
from swarm.router.onnx import OnnxEncoder
from swarm.router.router import ExampleBank, Neighbour, Router, RoutingPolicy

__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_MODELS_DIR",
    "DEFAULT_OOS_LABEL",
    "CachedEncoder",
    "EmbeddingCache",
    "Encoder",
    "ExampleBank",
    "LabelledExample",
    "Neighbour",
    "OnnxEncoder",
    "Router",
    "RoutingPolicy",
    "SentenceTransformerEncoder",
    "TrainingData",
    "current_version",
    "ensure_router",
    "list_versions",
    "learn_from_feedback",
    "load_encoder",
    "load_router",
    "load_serving_router",
    "read_labelled_file",
    "register_encoder",
    "set_current",
]

DEFAULT_MODELS_DIR = "storage/models"

log = logging.getLogger(__name__)


def load_router(
    path: str | Path, *, registry: Any = None, encoder: Encoder | None = None
) -> Router:
    """The router in `path` (a version folder or a models folder), checked against `registry`'s
    agents when one is given."""
    router = Router.load(path, encoder=encoder)
    if registry is not None:
        router.check_agents(registry.names)
    return router


def load_serving_router(
    models_dir: str | Path = DEFAULT_MODELS_DIR,
    registry: Any = None,
    *,
    encoder: Encoder | None = None,
) -> Router:
    """The version `models_dir/CURRENT` names. With `registry`, a router trained for another agent
    set raises ArtifactError saying what changed and how to retrain."""
    root = Path(models_dir)
    if current_version(root) is None:
        raise ArtifactError(f"no trained router in {root} (no CURRENT file); {RETRAIN_HINT}")
    return load_router(root, registry=registry, encoder=encoder)


def ensure_router(
    registry: Any,
    models_dir: str | Path = DEFAULT_MODELS_DIR,
    *,
    console: Any = None,
    encoder: Encoder | None = None,
) -> Router:
    """The serving router for `registry`, training one from the agents' examples first when there is
    none or the serving one was trained for other agents. A corrupt artifact is an error, not a
    reason to retrain silently."""
    root = Path(models_dir)
    version = current_version(root)
    if version is not None:
        manifest = read_manifest(resolve_artifact_dir(root))
        if manifest.get("agents_fingerprint") == registry.fingerprint():
            return load_router(root, registry=registry, encoder=encoder)
        reason = f"router {version} was trained for other agents"
    else:
        reason = f"no trained router in {root}"
    from swarm.router.train import TrainConfig, train_router

    data = TrainingData()
    data.add_agents(registry)
    if console is not None:
        console.print(f"[yellow]{reason}: training one from {len(data)} agent examples…[/yellow]")
    log.info("%s: training from %d agent examples", reason, len(data))
    router, _ = train_router(
        data, TrainConfig(), encoder=encoder, agents_fingerprint=registry.fingerprint()
    )
    router.save(root)
    return router
