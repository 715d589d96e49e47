"""Training a router end to end: gather examples, encode them (cached), fit the head ensemble,
calibrate, choose the out-of-scope threshold, and save a versioned artifact.

    swarm router train --data train.csv --out storage/models
    swarm router train --agents my_agents
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swarm.errors import DataError
from swarm.router.calibration import describe_calibration, fit_rules
from swarm.router.data import DEFAULT_OOS_LABEL, ConflictPolicy, LabelledExample, TrainingData
from swarm.router.encoders import (
    DEFAULT_ENCODER,
    CachedEncoder,
    Encoder,
    default_cache_dir,
    load_encoder,
)
from swarm.router.model import HeadConfig
from swarm.router.router import ExampleBank, Router, RoutingPolicy

__all__ = ["TrainConfig", "TrainReport", "train_router"]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    head: HeadConfig = field(default_factory=HeadConfig)
    encoder: str = DEFAULT_ENCODER
    oos_label: str = DEFAULT_OOS_LABEL
    threshold: float | None = None
    """None: chosen on held-out predictions; a number: set by hand (0 never rejects)."""
    target_rejection: float = 0.02
    """Without out-of-scope examples: the share of in-scope held-out texts the threshold rejects."""
    oos_recall: float | None = None
    """With out-of-scope examples: the least share of held-out out-of-scope texts the threshold
    must reject (`--oos-recall`; an error without out-of-scope examples). None: the threshold
    that maximises the mean of held-out in-scope accuracy and out-of-scope recall."""
    ambiguity_margin: float = 0.1
    """Top two agents' calibrated probabilities closer than this: ambiguous."""
    similarity_rules: bool = True
    """Reject texts far from every agent's examples, flag those near two agents' (the cuts come
    from leave-one-out similarities of the training examples; needs `keep_examples`)."""
    top_k: int = 5
    keep_examples: bool = True
    """Store training texts and embeddings in the artifact, for `explain`."""
    finetune: bool = False
    """Fine-tune the encoder first (slow, CPU-bounded by `finetune_minutes`)."""
    finetune_minutes: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainReport:
    """What training did, for people (`__rich_console__`) and the manifest (`to_dict`)."""

    sources: dict[str, int]
    examples: int
    labels: int
    relabelled_by_feedback: int
    """Texts whose label a person's correction changed."""
    conflicts: str
    """What was done with texts two sources gave different labels ("" when none)."""
    metrics: dict[str, float]
    seconds: dict[str, float]
    epochs: list[int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.table import Table

        table = Table(title="training data by source", show_edge=False)
        table.add_column("source")
        table.add_column("examples", justify="right")
        for source, n in self.sources.items():
            table.add_row(source, str(n))
        table.add_row("[bold]used (one per text)[/bold]", f"[bold]{self.examples}[/bold]")
        yield table
        if self.relabelled_by_feedback:
            yield f"{self.relabelled_by_feedback} texts were relabelled by people's feedback"
        if self.conflicts:
            yield f"[yellow]{self.conflicts}[/yellow]"
        m = self.metrics
        held_out = (
            # out of fold: each text measured by the ensemble members that did not train on it
            f"out-of-fold accuracy {m.get('heldout_accuracy', float('nan')):.4f}, "
            f"{describe_calibration(m)}"
        )
        if "heldout_oos_recall" in m:
            held_out += (
                f", in-scope accuracy {m['heldout_in_scope_accuracy']:.4f}, "
                f"out-of-scope recall {m['heldout_oos_recall']:.4f} "
                f"(rejects {m['heldout_in_scope_rejected']:.2%} of in-scope texts)"
            )
        yield held_out
        yield (
            f"temperature {m['temperature']:.3f}, threshold {m['threshold']:.3f}; "
            f"encode {self.seconds['encode']:.1f}s, fit {self.seconds['fit']:.1f}s"
        )


ProgressFactory = Callable[[str, int], Callable[[int], None]]
"""(description, total) -> advance(n): how training reports progress (the CLI gives rich bars)."""


def train_router(
    data: TrainingData,
    config: TrainConfig | None = None,
    *,
    encoder: Encoder | None = None,
    cache_dir: str | Path | None = None,
    progress: ProgressFactory | None = None,
    agents_fingerprint: str | None = None,
) -> tuple[Router, TrainReport]:
    """Train an unsaved router on `data`; `router.save(models_dir)` makes it an artifact.

    `encoder` overrides `config.encoder` (tests pass a HashEncoder). Embeddings are cached under
    `cache_dir` (default: $SWARM_EMBEDDING_CACHE or storage/cache/embeddings); `cache_dir=""`
    skips the cache.
    """
    import torch

    config = config or TrainConfig()
    examples = data.resolved()
    _check_trainable(examples, config.oos_label)
    # One thread: the head is small, and torch's second thread spin-waits on shared CPUs.
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(data, examples, config, encoder, cache_dir, progress, agents_fingerprint)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    data: TrainingData,
    examples: list[LabelledExample],
    config: TrainConfig,
    encoder: Encoder | None,
    cache_dir: str | Path | None,
    progress: ProgressFactory | None,
    agents_fingerprint: str | None,
) -> tuple[Router, TrainReport]:
    from swarm.router.fit import fit_ensemble, should_refit
    from swarm.router.model import export_ensemble

    texts = [ex.text for ex in examples]
    labels = sorted({ex.label for ex in examples})
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[ex.label] for ex in examples], dtype=np.int64)
    oos_index = index.get(config.oos_label)
    seconds: dict[str, float] = {}

    base = encoder if encoder is not None else load_encoder(config.encoder)
    if config.finetune:
        from swarm.router.finetune import finetune_encoder

        start = time.perf_counter()
        base = finetune_encoder(base, texts, y, minutes=config.finetune_minutes, progress=progress)
        seconds["finetune"] = time.perf_counter() - start
    cached: Encoder = base
    if cache_dir != "" and not config.finetune:
        cached = CachedEncoder(base, cache_dir if cache_dir is not None else default_cache_dir())

    start = time.perf_counter()
    advance = progress("encoding", len(texts)) if progress else None
    x = _encode(cached, texts, advance)  # (n, dim)
    seconds["encode"] = time.perf_counter() - start

    start = time.perf_counter()
    head_config = config.head
    members = max(1, head_config.members)
    passes = 2 if members > 1 and should_refit(head_config, y) else 1
    fit_step = progress("training", passes * members * head_config.max_epochs) if progress else None
    fitted = fit_ensemble(x, y, len(labels), head_config, step=fit_step)
    seconds["fit"] = time.perf_counter() - start

    # Calibrate and choose the rules on held-out logits only: what the heads did not train on.
    if config.oos_recall is not None and (oos_index is None or not (y == oos_index).any()):
        raise DataError(
            "--oos-recall needs out-of-scope examples (OUT_OF_SCOPE in the agents module, or "
            f"rows labelled {config.oos_label!r}) to measure the recall on"
        )
    rules = fit_rules(
        fitted.held_out_logits,
        y,
        x,
        oos_index,
        threshold=config.threshold,
        target_rejection=config.target_rejection,
        oos_recall=config.oos_recall,
        max_in_scope_rejection=1.0,
        ambiguity_margin=config.ambiguity_margin,
        use_similarity=config.similarity_rules and config.keep_examples,
    )
    temperature, threshold, metrics = rules.temperature, rules.threshold, rules.metrics

    weights, groups = export_ensemble(fitted.heads)
    policy = RoutingPolicy(
        temperature=temperature,
        threshold=threshold,
        ambiguity_margin=config.ambiguity_margin,
        oos_label=config.oos_label,
        top_k=config.top_k,
        far_similarity=rules.far_similarity,
        near_similarity=rules.near_similarity,
    )
    report = TrainReport(
        sources=data.counts_by_source(),
        examples=len(examples),
        labels=len(labels),
        relabelled_by_feedback=data.relabelled_by_feedback,
        conflicts=data.conflict_note(),
        metrics=metrics,
        seconds=seconds,
        epochs=fitted.epochs,
    )
    data_fingerprint = data.fingerprint()
    created = dt.datetime.now(dt.UTC)
    version = (
        created.strftime("%Y%m%d-%H%M%S-")
        + hashlib.sha256(
            f"{data_fingerprint}{json.dumps(config.to_dict(), sort_keys=True)}".encode()
        ).hexdigest()[:6]
    )
    manifest: dict[str, Any] = {
        "created_at": created.isoformat(timespec="seconds"),
        "data_fingerprint": data_fingerprint,
        "data_sources": report.sources,
        "label_counts": dict(sorted(Counter(ex.label for ex in examples).items())),
        "metrics": metrics,
        "train_config": config.to_dict(),
        "training": {"epochs": fitted.epochs, "seconds": seconds},
    }
    if agents_fingerprint is not None:
        manifest["registry_fingerprint"] = agents_fingerprint
    bank = ExampleBank(texts, [ex.label for ex in examples], x) if config.keep_examples else None
    router = Router(
        base,
        {k: v.numpy() for k, v in weights.items()},
        labels,
        policy,
        version=version,
        normalize_groups=groups,
        examples=bank,
        manifest=manifest,
    )
    return router, report


def _encode(
    encoder: Encoder, texts: list[str], advance: Callable[[int], None] | None
) -> np.ndarray:
    if advance is not None and isinstance(encoder, CachedEncoder):
        return encoder.encode(texts, progress=advance)
    out = encoder.encode(texts)
    if advance is not None:
        advance(len(texts))
    return np.asarray(out, dtype=np.float32)


def _check_trainable(examples: list[LabelledExample], oos_label: str) -> None:
    labels = {ex.label for ex in examples}
    in_scope = labels - {oos_label}
    if not examples:
        raise DataError("no training examples: give --data FILE or agents with `examples`")
    if not in_scope:
        raise DataError(
            f"every training example is labelled {oos_label!r} (out of scope); nothing to route to"
        )
    if len(labels) < 2:
        raise DataError(
            f"only one label ({next(iter(labels))!r}): a router needs at least two labels, "
            f"or out-of-scope examples labelled {oos_label!r}"
        )


def gather_training_data(
    *,
    files: Iterable[str | Path] = (),
    agents_module: str | None = None,
    feedback_db: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    on_conflict: ConflictPolicy = "error",
) -> tuple[TrainingData, str | None]:
    """TrainingData from the CLI's sources, and the agent registry's fingerprint (if agents)."""
    data = TrainingData(on_conflict=on_conflict)
    fingerprint = None
    if agents_module:
        from swarm.agents import AgentRegistry

        registry = AgentRegistry()
        registry.load_module(agents_module)
        data.add_agents(registry)
        fingerprint = registry.fingerprint()
    for f in files:
        data.add_file(f, text_column=text_column, label_column=label_column)
    if feedback_db:
        from swarm.trace import TraceStore

        with TraceStore(feedback_db) as store:
            data.add_feedback(store)
    return data, fingerprint
