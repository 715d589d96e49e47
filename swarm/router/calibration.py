"""Turning a head's scores into honest probabilities and decisions: temperature scaling, the
out-of-scope threshold and the ambiguity margin, each chosen on held-out (validation) predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_OOS_RECALL",
    "MIN_CALIBRATION_EXAMPLES",
    "RULES",
    "RULE_STATUS",
    "FittedRules",
    "LabelIndex",
    "SimilarityCuts",
    "apply_rules",
    "choose_threshold",
    "describe_calibration",
    "expected_calibration_error",
    "fit_rules",
    "fit_temperature",
    "in_scope_confidence",
    "label_similarities",
    "log_softmax",
    "similarity_cuts",
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


MIN_CALIBRATION_EXAMPLES = 50
"""Fewer held-out texts than this: no ECE is claimed and the temperature never sharpens."""

TEMPERATURE_PRIOR = 10.0
"""Weight of the prior on log T (centred on T = 1), in held-out texts: it decides on thin data and
fades as the held-out set grows (a few thousand texts leave it well under 1 % of the objective)."""


def fit_temperature(
    logits: np.ndarray, targets: np.ndarray, *, prior: float = TEMPERATURE_PRIOR
) -> float:
    """The T > 0 that minimises the negative log-likelihood of `targets` under softmax(logits / T),
    plus `prior * (log T)^2` summed over the data (a Gaussian prior on log T, MAP estimate).

    Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks") alone runs to
    its lower bound when every held-out prediction is right: the likelihood keeps rising as T
    falls. The prior stops that, and under `MIN_CALIBRATION_EXAMPLES` held-out texts T never goes
    below 1 (the data cannot show the head is underconfident). T is searched in [0.02, 50] by
    golden section on log T: one parameter, no optimiser state. logits: (n, labels); targets: (n,).
    """
    if len(targets) == 0:
        return 1.0
    rows = np.arange(len(targets))
    n = len(targets)

    def objective(log_t: float) -> float:
        nll = float(-log_softmax(logits, float(np.exp(log_t)))[rows, targets].sum())
        return nll + prior * log_t**2

    lo, hi = np.log(0.02), np.log(50.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = objective(a), objective(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = objective(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = objective(b)
    temperature = float(np.exp((lo + hi) / 2))
    return max(temperature, 1.0) if n < MIN_CALIBRATION_EXAMPLES else temperature


def in_scope_confidence(probs: np.ndarray, oos_index: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(best in-scope label index, its probability) per row; the out-of-scope column never wins."""
    masked = probs.copy()
    if oos_index is not None:
        masked[:, oos_index] = -1.0
    best = masked.argmax(axis=1)
    return best, masked[np.arange(len(best)), best]


NO_OOS_CEILING = 0.5
"""Without out-of-scope examples and with under `MIN_CALIBRATION_EXAMPLES` held-out texts, the
highest threshold `choose_threshold` picks."""

DEFAULT_OOS_RECALL = 0.9
"""With out-of-scope examples: the held-out out-of-scope recall the threshold is chosen to reach."""

MAX_IN_SCOPE_REJECTION = 0.5
"""The threshold chosen for an out-of-scope recall never rejects more in-scope held-out texts."""


def choose_threshold(
    probs: np.ndarray,
    targets: np.ndarray,
    oos_index: int | None,
    *,
    target_rejection: float = 0.02,
    oos_recall: float | None = DEFAULT_OOS_RECALL,
    rejected_anyway: np.ndarray | None = None,
    max_in_scope_rejection: float = MAX_IN_SCOPE_REJECTION,
) -> float:
    """The confidence below which a text is out of scope. probs: (n, labels); targets: (n,).

    With out-of-scope examples in `targets`: the lowest threshold whose held-out out-of-scope
    recall reaches `oos_recall` (counting texts the out-of-scope class wins and `rejected_anyway`,
    the texts other rules reject), without rejecting more than `max_in_scope_rejection` of the
    in-scope texts; `oos_recall=None` maximises the mean of in-scope accuracy and out-of-scope
    recall instead. Without them nothing says what to reject, so the threshold rejects about
    `target_rejection` of the in-scope examples, the least confident ones (which are mostly wrong
    anyway); from fewer than `MIN_CALIBRATION_EXAMPLES` held-out texts, the quantile is one or two
    texts and never rejects a text the router gives better-than-even odds (`NO_OOS_CEILING`).
    """
    best, confidence = in_scope_confidence(probs, oos_index)
    predicted_oos = probs.argmax(axis=1) == oos_index if oos_index is not None else None
    is_oos = targets == oos_index if oos_index is not None else np.zeros(len(targets), bool)
    if not is_oos.any() or is_oos.all():
        in_scope = confidence[~is_oos] if (~is_oos).any() else confidence
        if target_rejection <= 0 or len(in_scope) == 0:
            return 0.0
        quantile = float(np.quantile(in_scope, target_rejection))
        return (
            min(quantile, NO_OOS_CEILING) if len(in_scope) < MIN_CALIBRATION_EXAMPLES else quantile
        )
    # A thousand quantiles are as good as every distinct value and keep this linear in the data.
    candidates = np.unique(
        np.concatenate(
            [
                [0.0],
                np.quantile(confidence, np.linspace(0, 1, 1001)),
                [np.nextafter(confidence.max(), 2.0)],  # rejects every text
            ]
        )
    )
    always = np.zeros(len(targets), bool) if rejected_anyway is None else rejected_anyway.copy()
    if predicted_oos is not None:
        always |= predicted_oos
    if oos_recall is not None:
        best_threshold = 0.0
        for t in candidates:
            rejected = always | (confidence < t)
            if np.mean(rejected[~is_oos]) > MAX_IN_SCOPE_REJECTION:
                break
            if np.mean(rejected[is_oos]) >= oos_recall - 1e-12:
                return float(t)
            best_threshold = float(t)
        return best_threshold
    best_score, best_threshold = -1.0, 0.0
    for t in candidates:
        rejected = always | (confidence < t)
        in_scope_acc = np.mean((best == targets)[~is_oos] & ~rejected[~is_oos])
        score = (in_scope_acc + np.mean(rejected[is_oos])) / 2
        if score > best_score + 1e-12:
            best_score, best_threshold = score, float(t)
    return best_threshold


# ---- nearest training examples ------------------------------------------------------------------

FAR_REJECTION = 0.05
"""The share of in-scope training texts whose leave-one-out nearest same-agent similarity falls
below the far-from-examples cut (before the few-example shrinkage)."""

AMBIGUOUS_SHARE = 0.02
"""The share of in-scope training texts whose runner-up agent's nearest example reaches the near
cut (each would be flagged ambiguous): a request for two agents is far rarer than one for one."""

FAR_PRIOR_EXAMPLES = 3.0
"""How many examples per agent the leave-one-out estimate is worth as much as the prior "reject
nothing by similarity": with n examples per agent the cut is scaled by n / (n + 3). A handful of
examples written by one person are closer to each other than to a user's phrasing of the same
request, so their leave-one-out similarities overstate how near a real in-scope text will be."""


FAR_MEDIAN_FRACTION = 0.5
"""The far cut is at least this fraction of the median leave-one-out same-agent similarity: with
a few examples per agent that each cover a different request, the low quantile is one odd example
and says little; a text less than half as close to every agent as their examples typically are to
each other is far whatever the quantile."""


@dataclass(frozen=True)
class LabelIndex:
    """Training embeddings sorted by label, ready for `label_similarities` (built once per bank:
    sorting and copying a large bank costs more than the product for one query)."""

    sorted_bank: np.ndarray
    """(m, dim) float32, grouped by label."""
    present: np.ndarray
    """Label indices that have examples, ascending."""
    starts: np.ndarray
    """Where each present label's rows begin in `sorted_bank`."""
    position: np.ndarray
    """(m,) each original row's place in `sorted_bank`."""
    n_labels: int

    @classmethod
    def build(cls, bank: np.ndarray, bank_labels: np.ndarray, n_labels: int) -> LabelIndex:
        order = np.argsort(bank_labels, kind="stable")
        present, starts = np.unique(bank_labels[order], return_index=True)
        position = np.empty(len(order), np.int64)
        position[order] = np.arange(len(order))
        sorted_bank = np.ascontiguousarray(bank[order], dtype=np.float32)
        return cls(sorted_bank, present, starts, position, n_labels)


def label_similarities(
    queries: np.ndarray,
    bank: np.ndarray | LabelIndex,
    bank_labels: np.ndarray | None = None,
    n_labels: int = 0,
    *,
    exclude_self: bool = False,
    chunk: int = 1024,
) -> np.ndarray:
    """(n, n_labels): each query's highest cosine similarity to each label's examples.

    queries: (n, dim) and bank: (m, dim), both unit-normalised; bank_labels: (m,) label indices
    (or bank: a `LabelIndex` built from them once). A label without examples gets -1 (no
    similarity). `exclude_self`: the queries are the bank itself, and each row ignores its own
    example (leave-one-out).
    """
    if isinstance(bank, LabelIndex):
        index = bank
    else:
        assert bank_labels is not None, "bank_labels are needed with a raw bank"
        index = LabelIndex.build(bank, bank_labels, n_labels)
    out = np.full((len(queries), index.n_labels), -1.0, dtype=np.float32)
    if len(index.present) == 0:
        return out
    for lo in range(0, len(queries), chunk):
        q = np.asarray(queries[lo : lo + chunk], dtype=np.float32)
        sims = q @ index.sorted_bank.T  # (chunk, m)
        if exclude_self:
            rows = np.arange(len(q))
            sims[rows, index.position[lo : lo + len(q)]] = -2.0
        out[lo : lo + len(q), index.present] = np.maximum.reduceat(sims, index.starts, axis=1)
    np.maximum(out, -1.0, out=out)  # a label whose only example was the query itself
    return out


@dataclass(frozen=True)
class SimilarityCuts:
    """Cuts on nearest-example cosine similarity, chosen from the training examples alone."""

    far: float | None
    """The chosen agent's nearest example less similar: out of scope ("far from examples")."""
    near: float | None
    """The runner-up agent's nearest example at least this similar: it could take the text too
    (ambiguous)."""


def similarity_cuts(
    loo: np.ndarray,
    targets: np.ndarray,
    oos_index: int | None,
    *,
    rejection: float = FAR_REJECTION,
    prior_examples: float = FAR_PRIOR_EXAMPLES,
) -> SimilarityCuts:
    """The far and near cuts from leave-one-out similarities `loo` (n, labels) of the training
    examples (`label_similarities(..., exclude_self=True)`) and their label indices (n,).

    far: the `rejection` quantile of the in-scope examples' similarity to their own agent's
    other examples, scaled by n/(n + `prior_examples`) for n examples per agent (median), and at
    least `FAR_MEDIAN_FRACTION` of their median.
    near: the larger of that quantile (unscaled) and the 1 - `AMBIGUOUS_SHARE` quantile of the
    similarity to the nearest other agent, so about that share of the training texts would be
    flagged ambiguous. Both None when no agent has two examples.
    """
    in_scope = targets != oos_index if oos_index is not None else np.ones(len(targets), bool)
    counts = np.bincount(targets[in_scope], minlength=loo.shape[1])
    usable = in_scope & (counts[targets] >= 2)
    if usable.sum() < 2:
        return SimilarityCuts(None, None)
    rows = np.flatnonzero(usable)
    own = loo[rows, targets[rows]]  # (k,)
    others = loo[rows].copy()
    others[np.arange(len(rows)), targets[rows]] = -1.0
    if oos_index is not None:
        others[:, oos_index] = -1.0
    runner_up = others.max(axis=1)  # (k,)
    per_agent = float(np.median(counts[counts > 0]))
    low = float(np.quantile(own, rejection))
    typical = float(np.median(own))
    far = max(low * per_agent / (per_agent + prior_examples), FAR_MEDIAN_FRACTION * typical)
    near = max(low, float(np.quantile(runner_up, 1 - AMBIGUOUS_SHARE)))
    return SimilarityCuts(far, near)


# ---- the decision rules ------------------------------------------------------------------------

RULES = ("head", "out_of_scope_class", "far_from_examples", "low_confidence", "ambiguous")
"""Which rule decided: the head's choice stands; the out-of-scope class won; no agent's examples
are near; the best agent's probability is under the threshold; two agents could take it."""

RULE_STATUS = {
    "head": "routed",
    "out_of_scope_class": "out_of_scope",
    "far_from_examples": "out_of_scope",
    "low_confidence": "out_of_scope",
    "ambiguous": "ambiguous",
}

_REJECTING = [i for i, r in enumerate(RULES) if RULE_STATUS[r] == "out_of_scope"]


def apply_rules(
    probs: np.ndarray,
    similarities: np.ndarray | None,
    *,
    oos_index: int | None,
    threshold: float,
    ambiguity_margin: float,
    far: float | None,
    near: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decision rules, vectorised: (best in-scope label (n,), its probability (n,), rule (n,)
    as indices into `RULES`).

    probs: (n, labels) calibrated; similarities: (n, labels) nearest-example similarity per label
    (`label_similarities`), or None to use the head alone. In order: the out-of-scope class wins;
    the chosen agent's nearest example does not reach `far`; both top agents' examples reach
    `near` and the runner-up has at least `ambiguity_margin` (ambiguous even under the threshold:
    the two split the probability); the best probability is under `threshold`; the top two
    probabilities are within `ambiguity_margin`, or the runner-up's examples reach `near` and it
    has at least `ambiguity_margin`.
    """
    best, confidence = in_scope_confidence(probs, oos_index)
    masked = probs.copy()
    if oos_index is not None:
        masked[:, oos_index] = -1.0
    rows = np.arange(len(probs))
    masked[rows, best] = -1.0
    second = masked.argmax(axis=1)
    has_second = masked[rows, second] >= 0
    rule = np.zeros(len(probs), np.int64)
    ambiguous = has_second & (confidence - masked[rows, second] < ambiguity_margin)
    both_near = np.zeros(len(probs), bool)
    far_away = np.zeros(len(probs), bool)
    if similarities is not None:
        sims = similarities.copy()
        if oos_index is not None:
            sims[:, oos_index] = -1.0
        if near is not None:
            # The runner-up near by its examples and not ruled out by the head: a head sure of
            # one agent (the runner-up under `ambiguity_margin`) has seen such texts before.
            runner_up = has_second & (sims[rows, second] >= near)
            runner_up &= masked[rows, second] >= ambiguity_margin
            both_near = runner_up & (sims[rows, best] >= near)
            ambiguous |= runner_up
        # The chosen agent's examples: a text near only another agent's examples, which the head
        # did not choose, is no safer to route than one near nobody's.
        if far is not None:
            far_away = sims[rows, best] < far
    rule[ambiguous] = RULES.index("ambiguous")
    rule[confidence < threshold] = RULES.index("low_confidence")
    # Two agents both near by their examples split the probability between them: that low
    # confidence asks "A or B?", it does not mean "neither".
    rule[both_near] = RULES.index("ambiguous")
    rule[far_away] = RULES.index("far_from_examples")
    if oos_index is not None:
        rule[probs[:, oos_index] > confidence] = RULES.index("out_of_scope_class")
    return best, confidence, rule


@dataclass(frozen=True)
class FittedRules:
    """What `fit_rules` chose, and how the rules did on the held-out texts."""

    temperature: float
    threshold: float
    far_similarity: float | None
    near_similarity: float | None
    metrics: dict[str, float]
    """heldout_accuracy, heldout_examples, heldout_ambiguous, heldout_far; heldout_ece only from
    `MIN_CALIBRATION_EXAMPLES` held-out texts up; with out-of-scope examples also
    heldout_in_scope_accuracy, heldout_in_scope_rejected (what the out-of-scope recall costs) and
    heldout_oos_recall."""


NOT_ENOUGH_HELD_OUT = "not enough held-out data to measure calibration"


def fit_rules(
    held_out_logits: np.ndarray,
    targets: np.ndarray,
    embeddings: np.ndarray,
    oos_index: int | None,
    *,
    threshold: float | None = None,
    target_rejection: float = 0.02,
    oos_recall: float | None = DEFAULT_OOS_RECALL,
    max_in_scope_rejection: float | None = None,
    ambiguity_margin: float = 0.1,
    far_rejection: float = FAR_REJECTION,
    use_similarity: bool = True,
) -> FittedRules:
    """Temperature, threshold and similarity cuts for a head, from its held-out logits.

    held_out_logits: (n, labels), each row from a member that did not train on it (NaN rows: not
    held out); targets: (n,) label indices; embeddings: (n, dim) unit-normalised, the training
    examples (their leave-one-out nearest-example similarities stand in for held-out ones).
    `threshold` set by hand overrides the chosen one; `oos_recall` and `max_in_scope_rejection`
    (default `MAX_IN_SCOPE_REJECTION`) go to `choose_threshold`; `use_similarity=False` keeps the
    head's rules only (no far or near cut).
    """
    seen = ~np.isnan(held_out_logits[:, 0])
    held_logits, held_y = held_out_logits[seen], targets[seen]
    n_labels = held_out_logits.shape[1]
    temperature = fit_temperature(held_logits, held_y) if seen.sum() >= 2 else 1.0
    probs = softmax(held_logits, temperature)
    far = near = None
    loo: np.ndarray | None = None
    if use_similarity:
        loo = label_similarities(embeddings, embeddings, targets, n_labels, exclude_self=True)
        cuts = similarity_cuts(loo, targets, oos_index, rejection=far_rejection)
        # The far rule stands in for out-of-scope examples: with them, the out-of-scope class
        # and its threshold decide, and in-scope texts are not lost to the far cut as well.
        has_oos = oos_index is not None and bool((targets == oos_index).any())
        far, near = (None if has_oos else cuts.far), cuts.near
    held_sims = loo[seen] if loo is not None else None
    rule_args: dict[str, Any] = dict(
        oos_index=oos_index, ambiguity_margin=ambiguity_margin, far=far, near=near
    )
    if threshold is None:
        if seen.sum() >= 2:
            _, _, rules = apply_rules(probs, held_sims, threshold=0.0, **rule_args)
            threshold = choose_threshold(
                probs,
                held_y,
                oos_index,
                target_rejection=target_rejection,
                oos_recall=oos_recall,
                rejected_anyway=rules == RULES.index("far_from_examples"),
                max_in_scope_rejection=(
                    max_in_scope_rejection
                    if max_in_scope_rejection is not None
                    else MAX_IN_SCOPE_REJECTION
                ),
            )
        else:
            threshold = 0.0
    metrics: dict[str, float] = {"heldout_examples": float(len(held_y))}
    if len(held_y):
        best, _, rules = apply_rules(probs, held_sims, threshold=threshold, **rule_args)
        rejected = np.isin(rules, _REJECTING)
        predicted = np.where(rejected, -1 if oos_index is None else oos_index, best)
        metrics["heldout_accuracy"] = float(np.mean(predicted == held_y))
        metrics["heldout_ambiguous"] = float(np.mean(rules == RULES.index("ambiguous")))
        metrics["heldout_far"] = float(np.mean(rules == RULES.index("far_from_examples")))
        if len(held_y) >= MIN_CALIBRATION_EXAMPLES:
            top = probs.argmax(axis=1)
            metrics["heldout_ece"] = expected_calibration_error(probs.max(axis=1), top == held_y)
        if oos_index is not None and (held_y == oos_index).any():
            is_oos = held_y == oos_index
            metrics["heldout_in_scope_accuracy"] = float(
                np.mean(predicted[~is_oos] == held_y[~is_oos])
            )
            metrics["heldout_in_scope_rejected"] = float(np.mean(rejected[~is_oos]))
            metrics["heldout_oos_recall"] = float(np.mean(rejected[is_oos]))
            metrics["heldout_oos_examples"] = float(is_oos.sum())
    metrics.update(temperature=temperature, threshold=float(threshold))
    if far is not None:
        metrics.update(far_similarity=far)
    if near is not None:
        metrics.update(near_similarity=near)
    return FittedRules(temperature, float(threshold), far, near, metrics)


def describe_calibration(metrics: dict[str, float]) -> str:
    """One line for people: the held-out ECE, or why none is claimed."""
    n = int(metrics.get("heldout_examples", 0))
    if "heldout_ece" not in metrics or metrics["heldout_ece"] != metrics["heldout_ece"]:
        return f"{NOT_ENOUGH_HELD_OUT} ({n} held-out texts, {MIN_CALIBRATION_EXAMPLES} needed)"
    return f"ECE {metrics['heldout_ece']:.4f} on {n} held-out texts"


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
