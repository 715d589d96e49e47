"""The learned router: a sentence encoder and a small trained head that send each task to an agent,
reject what no agent should take, say when it is unsure, and explain themselves.

Serving (`Router`, `load_serving_router`) imports numpy only; training imports torch when called.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from swarm.errors import ArtifactError
from swarm.paths import DEFAULT_MODELS_DIR
from swarm.router.artifacts import (
    RETRAIN_HINT,
    current_version,
    list_versions,
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
    "load_encoder",
    "load_router",
    "load_serving_router",
    "read_labelled_file",
    "register_encoder",
    "set_current",
    "training_data_for",
]


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


def training_data_for(registry: Any, training: TrainingData | None = None) -> TrainingData:
    """What a router for `registry` learns from: `training` (a pack's extra rows), then the
    agents' examples, descriptions and OUT_OF_SCOPE requests."""
    data = TrainingData(
        list(training.examples) if training is not None else [],
        on_conflict=training.on_conflict if training is not None else "error",
    )
    data.add_agents(registry)
    return data


def ensure_router(
    registry: Any,
    models_dir: str | Path = DEFAULT_MODELS_DIR,
    *,
    training: TrainingData | None = None,
    console: Any = None,
    encoder: Encoder | None = None,
    progress: Any = None,
) -> Router:
    """The router for `registry`, reused when one was trained for it, else trained and saved.

    Reused: the newest version in `models_dir` trained for exactly these agents (registry
    fingerprint), this data (`training_data_for(registry, training)`'s fingerprint) and this
    encoder, with any feedback learnt on top of it; CURRENT moves to it. One models folder holds
    versions for several agent sets, so switching `--agents` and coming back reuses the version
    trained for them. Otherwise one is trained through `swarm.router.learn.learn` (minutes on a
    CPU for thousands of rows; the embedding cache makes later runs fast) and serves. A corrupt
    artifact is an error, not a reason to retrain silently.
    """
    from swarm.router.learn import learn, versions_for
    from swarm.router.train import TrainConfig

    root = Path(models_dir)
    config = TrainConfig()
    enc = encoder if encoder is not None else load_encoder(config.encoder)
    data = training_data_for(registry, training)
    wanted = data.fingerprint()

    def matching(kept_beside: bool) -> list[str]:
        return versions_for(
            root,
            registry.names,
            data_fingerprint=wanted,
            encoder_fingerprint=enc.fingerprint,
            kept_beside=kept_beside,
        )

    found = matching(False)
    current = current_version(root)
    if current is not None and current in matching(True):
        found.insert(0, current)  # serving these agents already (`router use` may have chosen it)
    if found:
        version = found[0]
        router = load_router(root / version, registry=registry, encoder=enc)
        if version != current:
            set_current(root, version)
            log.info("router %s serves these agents again (was %s)", version, current)
            if console is not None:
                console.print(
                    f"[grey50]router {version}, trained for these agents, serves[/grey50]"
                )
        return router
    if current is None:
        reason = f"no trained router in {root}"
    elif versions_for(root, registry.names):
        reason = f"the routers for these agents in {root} were trained on other data or encoder"
    else:
        reason = f"no router in {root} was trained for these agents"
    if console is not None:
        console.print(f"[yellow]{reason}: training one from {len(data)} examples…[/yellow]")
    log.info("%s: training from %d examples", reason, len(data))
    outcome = learn(
        root,
        data=data,
        config=config,
        unmeasured="promote",
        encoder=enc,
        progress=progress,
        registry_fingerprint=registry.fingerprint(),
    )
    if console is not None and outcome.report is not None:
        console.print(outcome.report)
    return outcome.router
