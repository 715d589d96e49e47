"""Turning a head's scores into honest probabilities and decisions: temperature scaling, the
out-of-scope threshold and the ambiguity margin, each chosen on held-out (validation) predictions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "choose_threshold",
    "expected_calibration_error",
    "fit_temperature",
    "in_scope_confidence",
    "log_softmax",
    "softmax",
]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The T > 0 that minimises the negative log-likelihood of `targets` under softmax(logits / T).

    One parameter, a smooth convex-ish objective in log T: a golden-section search is exact enough
    and needs no optimiser state (Guo et al. 2017, "On Calibration of Modern Neural Networks").
    """
    if len(targets) == 0:
        return 1.0
    rows = np.arange(len(targets))

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits, float(np.exp(log_t)))[rows, targets].mean())

    lo, hi = np.log(0.02), np.log(50.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2))


def in_scope_confidence(probs: np.ndarray, oos_index: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(best in-scope label index, its probability) per row; the out-of-scope column never wins."""
    masked = probs.copy()
    if oos_index is not None:
        masked[:, oos_index] = -1.0
    best = masked.argmax(axis=1)
    return best, masked[np.arange(len(best)), best]


NO_OOS_CEILING = 0.5
"""Without out-of-scope examples, the highest threshold `choose_threshold` picks."""


def choose_threshold(
    probs: np.ndarray,
    targets: np.ndarray,
    oos_index: int | None,
    *,
    target_rejection: float = 0.02,
) -> float:
    """The confidence below which a text is out of scope.

    With out-of-scope examples in `targets`: the threshold that maximises the mean of in-scope
    accuracy and out-of-scope recall (balanced, so a rare out-of-scope class still counts).
    Without them nothing says what to reject, so the threshold rejects about `target_rejection` of
    the in-scope examples, the least confident ones (which are mostly wrong anyway), but never a
    text the router gives better-than-even odds (`NO_OOS_CEILING`): with a few examples a label,
    every held-out confidence is near 1 and the quantile alone would reject almost everything new.
    """
    best, confidence = in_scope_confidence(probs, oos_index)
    predicted_oos = probs.argmax(axis=1) == oos_index if oos_index is not None else None
    is_oos = targets == oos_index if oos_index is not None else np.zeros(len(targets), bool)
    if not is_oos.any() or is_oos.all():
        in_scope = confidence[~is_oos] if (~is_oos).any() else confidence
        if target_rejection <= 0 or len(in_scope) == 0:
            return 0.0
        return float(min(np.quantile(in_scope, target_rejection), NO_OOS_CEILING))
    # A thousand quantiles are as good as every distinct value and keep this linear in the data.
    candidates = np.unique(
        np.concatenate([[0.0], np.quantile(confidence, np.linspace(0, 1, 1001))])
    )
    best_score, best_threshold = -1.0, 0.0
    for t in candidates:
        rejected = confidence < t
        if predicted_oos is not None:
            rejected = rejected | predicted_oos
        in_scope_acc = np.mean((best == targets)[~is_oos] & ~rejected[~is_oos])
        oos_recall = np.mean(rejected[is_oos])
        score = (in_scope_acc + oos_recall) / 2
        if score > best_score + 1e-12:
            best_score, best_threshold = score, float(t)
    return best_threshold


def expected_calibration_error(
    confidence: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray, bins: int = 15
) -> float:
    """ECE, equal-width bins: the mean gap between confidence and accuracy, weighted by bin size."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if len(conf) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.mean() * abs(conf[in_bin].mean() - hit[in_bin].mean())
    return float(total)
