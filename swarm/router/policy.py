"""The parts of a router that are plain data: the routing policy (temperature, threshold, the
rules' cuts) and the bank of training examples behind `explain`. Below router.py, explain.py and
artifacts.py, which all use them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from swarm.models import OUT_OF_SCOPE
from swarm.router.calibration import LabelIndex, label_similarities

__all__ = ["ExampleBank", "Neighbour", "RoutingPolicy"]


@dataclass(frozen=True)
class RoutingPolicy:
    """The rules that turn calibrated probabilities into a decision."""

    temperature: float = 1.0
    threshold: float = 0.0
    """Best agent's probability below this: out of scope."""
    ambiguity_margin: float = 0.0
    """Top two agents' probabilities closer than this: ambiguous (ask, do not guess)."""
    oos_label: str | None = OUT_OF_SCOPE
    """The label of out-of-scope examples, if the head learnt one."""
    top_k: int = 5
    far_similarity: float | None = None
    """The chosen agent's nearest training example less similar than this (cosine): out of scope,
    "far from examples". None: the rule is off (or the router keeps no examples)."""
    near_similarity: float | None = None
    """The runner-up agent's nearest example at least this similar: ambiguous. None: off."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RoutingPolicy:
        """From `to_dict`'s output (a manifest); fields it lacks keep their defaults (an older
        artifact has no similarity cuts). Raises KeyError, TypeError or ValueError on bad values."""

        def number(key: str) -> float | None:
            value = raw.get(key)
            return None if value is None else float(value)

        return cls(
            temperature=float(raw["temperature"]),
            threshold=float(raw["threshold"]),
            ambiguity_margin=float(raw["ambiguity_margin"]),
            oos_label=raw.get("oos_label"),
            top_k=int(raw.get("top_k", 5)),
            far_similarity=number("far_similarity"),
            near_similarity=number("near_similarity"),
        )


@dataclass(frozen=True)
class Neighbour:
    text: str
    label: str
    similarity: float


@dataclass
class ExampleBank:
    """The training texts and their embeddings, kept so `explain` can show the examples behind a
    decision."""

    texts: list[str]
    labels: list[str]
    embeddings: np.ndarray  # (n, dim), float16 on disk, float32 here
    _by_label: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _indexes: dict[tuple[str, ...], LabelIndex] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        label_array = np.asarray(self.labels, dtype=object)
        self._by_label = {label: np.flatnonzero(label_array == label) for label in set(self.labels)}

    def similarities(self, vectors: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """(n, len(labels)): each vector's highest cosine similarity to each label's examples
        (-1 for a label with none). vectors: (n, dim), unit-normalised."""
        key = tuple(labels)
        prepared = self._indexes.get(key)
        if prepared is None:
            index = {label: i for i, label in enumerate(labels)}
            known = np.array([label in index for label in self.labels], bool)
            codes = np.array([index[label] for label in self.labels if label in index], np.int64)
            prepared = LabelIndex.build(self.embeddings[known], codes, len(labels))
            self._indexes[key] = prepared
        return label_similarities(vectors, prepared)

    def nearest(self, vector: np.ndarray, k: int = 3, label: str | None = None) -> list[Neighbour]:
        rows = self._by_label.get(label, np.empty(0, np.int64)) if label is not None else None
        pool = self.embeddings if rows is None else self.embeddings[rows]
        if len(pool) == 0:
            return []
        sims = pool @ vector  # (pool,)
        top = np.argsort(-sims)[:k]
        index = top if rows is None else rows[top]
        return [
            Neighbour(self.texts[i], self.labels[i], float(s))
            for i, s in zip(index, sims[top], strict=True)
        ]
