"""The serving router: encoder + head in numpy, calibrated probabilities, and the decision rules
(routed, out of scope, ambiguous). No torch import on this path: a router starts in a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from swarm.errors import ArtifactError
from swarm.models import Decision
from swarm.router.bert import _gelu_inplace
from swarm.router.calibration import RULE_STATUS, RULES, apply_rules, softmax
from swarm.router.encoders import Encoder
from swarm.router.policy import ExampleBank, Neighbour, RoutingPolicy

if TYPE_CHECKING:
    from swarm.router.explain import Explanation

__all__ = ["ExampleBank", "Neighbour", "Router", "RoutingPolicy"]


class Router:
    """Routes texts to agents. Thread-safe; the scheduler calls `route` from a worker thread.

    Load a trained one with `Router.load(folder)` (a version folder, or a models folder whose
    CURRENT file names the serving version).
    """

    blocking = True
    """Encoding takes milliseconds of CPU: the scheduler should call `route` off the event loop."""

    def __init__(
        self,
        encoder: Encoder,
        weights: Mapping[str, np.ndarray],
        head_labels: Sequence[str],
        policy: RoutingPolicy,
        *,
        version: str = "unsaved",
        normalize_groups: int = 0,
        examples: ExampleBank | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        self.encoder = encoder
        self.weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
        self.head_labels = list(head_labels)
        self.policy = policy
        self.version = version
        self.normalize_groups = normalize_groups
        self.examples = examples
        self.manifest = manifest or {}
        oos = policy.oos_label
        self.oos_index = self.head_labels.index(oos) if oos in self.head_labels else None
        self.labels = [label for label in self.head_labels if label != oos]
        """The agents this router can send to (the out-of-scope label is not one)."""
        self._agent_index = np.array(
            [i for i, label in enumerate(self.head_labels) if i != self.oos_index], dtype=np.int64
        )
        self._lock = threading.Lock()
        self._check_shapes()

    def _check_shapes(self) -> None:
        dim = self.encoder.dimension
        out_w = self.weights.get("out.weight")
        if out_w is None:
            raise ArtifactError(f"router {self.version}: weights have no out.weight")
        hidden_w = self.weights.get("hidden.weight")
        first_in = hidden_w.shape[0] if hidden_w is not None else out_w.shape[0]
        if first_in != dim:
            raise ArtifactError(
                f"router {self.version}: head expects {first_in}-dim embeddings, encoder "
                f"{self.encoder.name!r} gives {dim}"
            )
        if out_w.shape[1] != len(self.head_labels):
            raise ArtifactError(
                f"router {self.version}: head has {out_w.shape[1]} outputs for "
                f"{len(self.head_labels)} labels"
            )
        if len(set(self.head_labels)) != len(self.head_labels):
            raise ArtifactError(f"router {self.version}: labels repeat")

    # ---- scoring ---------------------------------------------------------------------------------

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, dim) embeddings -> (n, labels) uncalibrated mean logits of the head ensemble."""
        w = self.weights
        x = embeddings.astype(np.float32, copy=False)
        if "hidden.weight" in w:
            x = x @ w["hidden.weight"] + w["hidden.bias"]  # (n, members*hidden)
            _gelu_inplace(x)
            if self.normalize_groups:
                grouped = x.reshape(len(x), -1, self.normalize_groups)  # (n, members, hidden)
                grouped /= np.maximum(np.linalg.norm(grouped, axis=-1, keepdims=True), 1e-12)
        out = x @ w["out.weight"]  # (n, labels)
        if "out.bias" in w:
            out += w["out.bias"]
        return out

    def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings (n, dim), calibrated probabilities (n, labels) over `head_labels`)."""
        embeddings = self.encoder.encode(list(texts))
        return embeddings, softmax(self.logits(embeddings), self.policy.temperature)

    def similarities(self, embeddings: np.ndarray) -> np.ndarray | None:
        """(n, labels) nearest-training-example similarity per label of `head_labels`, or None
        when the policy uses no similarity rule or the router keeps no examples."""
        p = self.policy
        if self.examples is None or (p.far_similarity is None and p.near_similarity is None):
            return None
        return self.examples.similarities(embeddings, self.head_labels)

    # ---- deciding --------------------------------------------------------------------------------

    def route(self, texts: list[str]) -> list[Decision]:
        """One decision per text, in order. `latency_ms` is the time the whole batch took."""
        if not texts:
            return []
        start = time.perf_counter()
        with self._lock:
            embeddings, probs = self.probabilities(texts)
        decisions = self.decide_many(probs, self.similarities(embeddings))
        elapsed_ms = (time.perf_counter() - start) * 1000
        return [replace(d, latency_ms=elapsed_ms) for d in decisions]

    def decide_many(
        self, probs: np.ndarray, similarities: np.ndarray | None = None
    ) -> list[Decision]:
        """Decisions for rows of calibrated probabilities (n, labels) over `head_labels`, with
        each row's nearest-example similarity per label (n, labels) when the policy uses it."""
        p = self.policy
        _, _, rules = apply_rules(
            probs,
            similarities,
            oos_index=self.oos_index,
            threshold=p.threshold,
            ambiguity_margin=p.ambiguity_margin,
            far=p.far_similarity,
            near=p.near_similarity,
        )
        return [self._decision(row, RULES[r]) for row, r in zip(probs, rules, strict=True)]

    def decide(
        self, probs: np.ndarray, similarities: np.ndarray | None = None, *, latency_ms: float = 0.0
    ) -> Decision:
        """The decision for one row of calibrated probabilities over `head_labels`, and its
        nearest-example similarity per label (None: the head's rules only)."""
        sims = similarities[None] if similarities is not None else None
        return replace(self.decide_many(probs[None], sims)[0], latency_ms=latency_ms)

    def _decision(self, probs: np.ndarray, rule: str) -> Decision:
        agent_probs = probs[self._agent_index]  # (agents,)
        order = np.argsort(-agent_probs)[: max(self.policy.top_k, 2)]
        candidates = tuple(
            (self.head_labels[self._agent_index[i]], round(float(agent_probs[i]), 6)) for i in order
        )
        best, confidence = candidates[0]
        status = RULE_STATUS[rule]
        return Decision(
            agent=None if status == "out_of_scope" else best,
            confidence=confidence,
            candidates=candidates[: self.policy.top_k],
            version=self.version,
            status=status,  # type: ignore[arg-type]
            rule=rule,
        )

    def explain(self, text: str, *, k: int = 3) -> Explanation:
        """The decision for `text`, its top candidates and the training examples nearest to it."""
        from swarm.router.explain import Explanation

        start = time.perf_counter()
        with self._lock:
            embeddings, probs = self.probabilities([text])
        sims = self.similarities(embeddings)
        decision = self.decide(
            probs[0],
            sims[0] if sims is not None else None,
            latency_ms=(time.perf_counter() - start) * 1000,
        )
        behind: dict[str, list[Neighbour]] = {}
        nearest: list[Neighbour] = []
        if self.examples is not None:
            vector = embeddings[0]
            for label, _ in decision.candidates[:k]:
                behind[label] = self.examples.nearest(vector, k=k, label=label)
            nearest = self.examples.nearest(vector, k=k)
        oos_prob = float(probs[0][self.oos_index]) if self.oos_index is not None else None
        similarity = (
            {label: float(s) for label, s in zip(self.head_labels, sims[0], strict=True)}
            if sims is not None
            else {}
        )
        return Explanation(text, decision, behind, nearest, self.policy, oos_prob, similarity)

    # ---- artifacts -------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, *, encoder: Encoder | None = None) -> Router:
        """A version folder, or a models folder (its CURRENT version): see `artifacts.py`."""
        from swarm.router.artifacts import load_router_artifact

        return load_router_artifact(path, encoder=encoder, router_cls=cls)

    def save(self, models_dir: str | Path, *, make_current: bool = True) -> Path:
        """Write this router as a new version under `models_dir`; returns its folder."""
        from swarm.router.artifacts import save_router_artifact

        return save_router_artifact(self, models_dir, make_current=make_current)

    def check_agents(self, agent_names: Sequence[str]) -> None:
        """Raise ArtifactError, with how to retrain, when `agent_names` differ from the labels."""
        from swarm.router.artifacts import check_agent_names

        check_agent_names(self, agent_names)

    def __repr__(self) -> str:
        return f"<Router {self.version} {len(self.labels)} agents, encoder {self.encoder.name!r}>"
