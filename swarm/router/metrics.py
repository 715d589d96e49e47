"""Evaluating a router on labelled texts: accuracy, macro-F1, per-label scores, confused pairs,
calibration (ECE) and, with out-of-scope rows, in-scope accuracy, out-of-scope recall and AUROC.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from swarm.feedback import OUT_OF_SCOPE
from swarm.models import Decision, RouterLike
from swarm.router.calibration import expected_calibration_error

__all__ = ["EvalReport", "LabelScore", "auroc", "evaluate", "macro_f1", "score_decisions"]


@dataclass(frozen=True)
class LabelScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvalReport:
    examples: int
    accuracy: float
    """Decisions whose agent is the label; for out-of-scope rows, decisions that reject."""
    macro_f1: float
    ece: float
    """Expected calibration error of the confidence, over rows whose label the router knows."""
    per_label: list[LabelScore]
    confused: list[tuple[str, str, int]]
    """(true label, predicted, count), most frequent first."""
    ambiguous_rate: float
    rejected_rate: float
    in_scope_accuracy: float | None = None
    oos_recall: float | None = None
    auroc: float | None = None
    """Of the confidence as an in-scope vs out-of-scope score: 1 separates them perfectly."""
    unknown_labels: dict[str, int] = field(default_factory=dict)
    """Labels in the data that the router was not trained on (always counted wrong)."""
    version: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["per_label"] = {
            s.label: {k: v for k, v in asdict(s).items() if k != "label"} for s in self.per_label
        }
        out["confused"] = [{"true": t, "predicted": p, "count": n} for t, p, n in self.confused]
        if self.oos_recall is None:
            for key in ("in_scope_accuracy", "oos_recall", "auroc"):
                out.pop(key)
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        summary = Table(
            title=f"router {self.version} on {self.examples} examples", show_header=False
        )
        summary.add_column("metric")
        summary.add_column("value", justify="right")
        summary.add_row("accuracy", f"{self.accuracy:.4f}")
        summary.add_row("macro-F1", f"{self.macro_f1:.4f}")
        summary.add_row("expected calibration error", f"{self.ece:.4f}")
        if self.oos_recall is not None:
            summary.add_row("in-scope accuracy", f"{self.in_scope_accuracy:.4f}")
            summary.add_row("out-of-scope recall", f"{self.oos_recall:.4f}")
            summary.add_row("AUROC (confidence, in vs out of scope)", f"{self.auroc:.4f}")
        summary.add_row("ambiguous", f"{self.ambiguous_rate:.2%}")
        summary.add_row("rejected (out of scope)", f"{self.rejected_rate:.2%}")
        yield summary
        labels = Table(title="per label (worst F1 first)", show_edge=False)
        for name in ("label", "precision", "recall", "F1", "support"):
            labels.add_column(name, justify="left" if name == "label" else "right")
        for s in sorted(self.per_label, key=lambda s: (s.f1, s.label)):
            style = "red" if s.f1 < 0.8 else ""
            labels.add_row(
                s.label,
                f"{s.precision:.3f}",
                f"{s.recall:.3f}",
                f"{s.f1:.3f}",
                str(s.support),
                style=style,
            )
        yield labels
        if self.confused:
            pairs = Table(title="most confused (true -> predicted)", show_edge=False)
            pairs.add_column("true")
            pairs.add_column("predicted")
            pairs.add_column("count", justify="right")
            for t, p, n in self.confused:
                pairs.add_row(t, p, str(n))
            yield pairs
        if self.unknown_labels:
            names = ", ".join(f"{k} ({v})" for k, v in sorted(self.unknown_labels.items()))
            yield f"[yellow]labels the router does not know (counted wrong): {names}[/yellow]"


def evaluate(
    router: RouterLike,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    oos_label: str | None = None,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Route `texts` in batches and score the decisions against `labels`."""
    oos = oos_label if oos_label is not None else OUT_OF_SCOPE
    start = time.perf_counter()
    decisions: list[Decision] = []
    for i in range(0, len(texts), batch_size):
        batch = list(texts[i : i + batch_size])
        decisions += router.route(batch)
        if progress is not None:
            progress(len(batch))
    report = score_decisions(
        decisions, labels, oos_label=oos or OUT_OF_SCOPE, known=getattr(router, "labels", None)
    )
    report.version = str(router.version)
    report.seconds = time.perf_counter() - start
    return report


def score_decisions(
    decisions: Sequence[Decision],
    labels: Sequence[str],
    *,
    oos_label: str = OUT_OF_SCOPE,
    known: Sequence[str] | None = None,
    top_confused: int = 10,
) -> EvalReport:
    if len(decisions) != len(labels):
        raise ValueError(f"{len(decisions)} decisions for {len(labels)} labels")
    predicted = [d.agent if d.agent is not None else oos_label for d in decisions]
    truth = list(labels)
    correct = np.array([p == t for p, t in zip(predicted, truth, strict=True)])
    is_oos = np.array([t == oos_label for t in truth])
    confidence = np.array([d.confidence for d in decisions], dtype=np.float64)
    known_set = set(known) if known is not None else set(truth) - {oos_label}
    unknown = Counter(t for t in truth if t != oos_label and t not in known_set)

    # Calibration of "the best agent is right", on rows where some agent is right.
    in_known = np.array([t in known_set for t in truth])
    top_right = np.array(
        [
            bool(d.candidates) and d.candidates[0][0] == t
            for d, t in zip(decisions, truth, strict=True)
        ]
    )
    ece = (
        expected_calibration_error(confidence[in_known], top_right[in_known])
        if in_known.any()
        else 0.0
    )

    per_label = _per_label(truth, predicted)
    report = EvalReport(
        examples=len(truth),
        accuracy=float(correct.mean()) if len(truth) else 0.0,
        macro_f1=float(np.mean([s.f1 for s in per_label if s.support > 0])) if per_label else 0.0,
        ece=float(ece),
        per_label=per_label,
        confused=[
            (t, p, n)
            for (t, p), n in Counter(
                (t, p) for t, p in zip(truth, predicted, strict=True) if t != p
            ).most_common(top_confused)
        ],
        ambiguous_rate=float(np.mean([d.status == "ambiguous" for d in decisions]))
        if decisions
        else 0.0,
        rejected_rate=float(np.mean([d.agent is None for d in decisions])) if decisions else 0.0,
        unknown_labels=dict(unknown),
    )
    if is_oos.any():
        report.in_scope_accuracy = float(correct[~is_oos].mean()) if (~is_oos).any() else 0.0
        report.oos_recall = float(correct[is_oos].mean())
        report.auroc = auroc(confidence[~is_oos], confidence[is_oos])
    return report


def _per_label(truth: list[str], predicted: list[str]) -> list[LabelScore]:
    support = Counter(truth)
    hits = Counter(t for t, p in zip(truth, predicted, strict=True) if t == p)
    guessed = Counter(predicted)
    out = []
    for label in sorted(set(truth) | set(predicted)):
        tp = hits[label]
        precision = tp / guessed[label] if guessed[label] else 0.0
        recall = tp / support[label] if support[label] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(LabelScore(label, precision, recall, f1, support[label]))
    return out


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    scores = [s.f1 for s in _per_label(list(truth), list(predicted)) if s.support > 0]
    return float(np.mean(scores)) if scores else 0.0


def auroc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting half."""
    pos, neg = np.asarray(positive_scores, np.float64), np.asarray(negative_scores, np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    scores = np.concatenate([pos, neg])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks over ties (1-based), then the Mann-Whitney U statistic.
    unique, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))
