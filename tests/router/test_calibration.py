"""Temperature scaling, the out-of-scope threshold, ECE and AUROC."""

from __future__ import annotations

import numpy as np
import pytest

from swarm.router.calibration import (
    RULES,
    SimilarityCuts,
    apply_rules,
    choose_threshold,
    describe_calibration,
    expected_calibration_error,
    fit_rules,
    fit_temperature,
    label_similarities,
    similarity_cuts,
    softmax,
)
from swarm.router.metrics import auroc


def test_fit_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(4000, 10))
    true_t = 2.5
    probs = softmax(logits, true_t)
    targets = np.array([rng.choice(10, p=p) for p in probs])
    assert abs(fit_temperature(logits, targets) - true_t) < 0.25


def test_temperature_lowers_nll_of_overconfident_logits() -> None:
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 5, 500)
    logits = rng.normal(0, 1, (500, 5))
    logits[np.arange(500), targets] += 1.0
    logits *= 8  # overconfident
    t = fit_temperature(logits, targets)
    rows = np.arange(500)
    nll = lambda temp: -np.log(softmax(logits, temp)[rows, targets]).mean()  # noqa: E731
    assert t > 1.5 and nll(t) < nll(1.0)


def test_threshold_with_oos_examples_separates_them() -> None:
    # Label 2 is out of scope; in-scope rows are confident, out-of-scope rows are not.
    probs = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.1, 0.85, 0.05],
            [0.8, 0.1, 0.1],
            [0.4, 0.35, 0.25],
            [0.35, 0.4, 0.25],
        ]
    )
    targets = np.array([0, 1, 0, 2, 2])
    t = choose_threshold(probs, targets, oos_index=2)
    assert 0.4 < t <= 0.8


def test_threshold_without_oos_rejects_the_target_share() -> None:
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(4) * 0.3, size=1000)
    targets = probs.argmax(axis=1)
    t = choose_threshold(probs, targets, oos_index=None, target_rejection=0.05)
    rejected = (probs.max(axis=1) < t).mean()
    assert 0.04 <= rejected <= 0.06
    assert choose_threshold(probs, targets, oos_index=None, target_rejection=0.0) == 0.0


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_not() -> None:
    conf = np.full(1000, 0.7)
    hits = np.arange(1000) < 700
    assert expected_calibration_error(conf, hits) < 1e-9
    assert abs(expected_calibration_error(np.full(100, 0.99), np.zeros(100, bool)) - 0.99) < 1e-9


def test_auroc_matches_pairwise_count() -> None:
    rng = np.random.default_rng(3)
    pos, neg = rng.normal(1, 1, 60).round(1), rng.normal(0, 1, 40).round(1)
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert abs(auroc(pos, neg) - brute) < 1e-12
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0


def test_threshold_without_oos_never_rejects_better_than_even_odds() -> None:
    # A few examples a label: every held-out confidence is near 1, so the 2% quantile would
    # reject any new text the router is merely 99% sure of.
    probs = np.array([[0.999, 0.001], [0.0005, 0.9995], [0.9999, 0.0001]] * 10)
    targets = probs.argmax(axis=1)
    assert choose_threshold(probs, targets, oos_index=None) == 0.5


# ---- thin or perfectly separated held-out data -------------------------------------------------


def test_temperature_never_sharpens_on_thin_held_out_data() -> None:
    # Eleven held-out texts, all right: the likelihood alone runs T to its lower bound.
    logits = np.eye(3)[np.arange(11) % 3] * 2.0
    targets = np.arange(11) % 3
    assert fit_temperature(logits, targets) >= 1.0
    assert fit_temperature(logits, targets, prior=0.0) >= 1.0
    assert fit_temperature(logits[:0], targets[:0]) == 1.0


def test_prior_keeps_perfectly_separated_data_off_the_bound() -> None:
    # 300 held-out texts, all right: some sharpening is earned, not a collapse to the 0.02 bound.
    rng = np.random.default_rng(4)
    targets = rng.integers(0, 4, 300)
    logits = rng.normal(0, 0.3, (300, 4))
    logits[np.arange(300), targets] += 2.0
    unbounded = fit_temperature(logits, targets, prior=0.0)
    with_prior = fit_temperature(logits, targets)
    assert unbounded < 0.03
    assert 0.1 < with_prior < 1.0


def test_no_ece_is_claimed_from_fewer_than_fifty_held_out_texts() -> None:
    x = np.eye(4, dtype=np.float32)[np.arange(12) % 4]
    y = np.arange(12) % 4
    logits = x * 3.0
    fitted = fit_rules(logits, y, x, None)
    assert "heldout_ece" not in fitted.metrics
    assert describe_calibration(fitted.metrics).startswith(
        "not enough held-out data to measure calibration"
    )
    big = np.tile(logits, (5, 1)), np.tile(y, 5), np.tile(x, (5, 1))
    assert "heldout_ece" in fit_rules(*big, None).metrics
    assert describe_calibration(fit_rules(*big, None).metrics).startswith("ECE ")


# ---- out of scope by recall, by similarity ----------------------------------------------------


def test_threshold_reaches_the_stated_oos_recall_and_reports_its_cost() -> None:
    rng = np.random.default_rng(5)
    n_in, n_oos = 400, 100
    # Label 2 is out of scope; its texts get lower in-scope confidence on average, with overlap.
    conf_in = rng.uniform(0.5, 1.0, n_in)
    conf_oos = rng.uniform(0.3, 0.8, n_oos)
    probs = np.zeros((n_in + n_oos, 3))
    probs[:n_in, 0] = conf_in
    probs[n_in:, 0] = conf_oos
    probs[:, 1] = (1 - probs[:, 0]) * 0.6
    probs[:, 2] = (1 - probs[:, 0]) * 0.4
    targets = np.array([0] * n_in + [2] * n_oos)
    for recall in (0.5, 0.9):
        t = choose_threshold(probs, targets, 2, oos_recall=recall)
        achieved = np.mean(conf_oos < t)
        assert recall <= achieved < recall + 0.03
    # A higher recall costs more in-scope texts.
    low, high = (choose_threshold(probs, targets, 2, oos_recall=r) for r in (0.5, 0.9))
    assert np.mean(conf_in < high) > np.mean(conf_in < low)


def _clusters(rng: np.random.Generator, centres: np.ndarray, per: int, spread: float) -> np.ndarray:
    x = np.repeat(centres, per, axis=0) + rng.normal(
        0, spread, (len(centres) * per, centres.shape[1])
    )
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_label_similarities_match_a_brute_force_leave_one_out() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = rng.integers(0, 4, 40)
    y[0] = 3  # label 3 has examples; label 4 has none
    got = label_similarities(x, x, y, 5, exclude_self=True)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    for i in range(40):
        for label in range(4):
            others = sims[i, y == label]
            expected = others.max() if np.isfinite(others).any() else -1.0
            assert got[i, label] == pytest.approx(max(expected, -1.0), abs=1e-6)
    assert (got[:, 4] == -1.0).all()
    assert np.allclose(label_similarities(x[:3], x, y, 5)[:, y[0]].max(), 1.0, atol=1e-6)


def test_similarity_cuts_put_far_texts_out_and_shrink_with_few_examples() -> None:
    rng = np.random.default_rng(7)
    centres = np.eye(16)[:3] * 1.0
    x = _clusters(rng, centres, 30, 0.12)
    y = np.repeat(np.arange(3), 30)
    loo = label_similarities(x, x, y, 3, exclude_self=True)
    cuts = similarity_cuts(loo, y, None)
    assert cuts.far is not None and cuts.near is not None
    own = loo[np.arange(len(y)), y]
    # At most the stated share of in-scope texts (5 %), less the shrinkage for 30 per agent.
    assert np.mean(own < cuts.far) <= 0.05 and cuts.far > np.quantile(own, 0.05) * 0.85
    far_texts = _clusters(rng, np.eye(16)[8:11], 5, 0.12)  # other directions entirely
    assert (label_similarities(far_texts, x, y, 3).max(axis=1) < cuts.far).all()
    # Three examples an agent: the leave-one-out estimate is trusted less, the cut is lower.
    few = np.concatenate([np.flatnonzero(y == k)[:3] for k in range(3)])
    loo_few = label_similarities(x[few], x[few], y[few], 3, exclude_self=True)
    few_cuts = similarity_cuts(loo_few, y[few], None)
    assert few_cuts.far is not None and few_cuts.far < np.quantile(
        loo_few[np.arange(9), y[few]], 0.05
    )
    # One example per agent: nothing to leave out, no similarity rule.
    assert similarity_cuts(loo[[0, 30, 60]][:, :3], np.arange(3), None) == SimilarityCuts(
        None, None
    )


def test_each_rule_decides_in_its_order() -> None:
    probs = np.array(
        [
            [0.90, 0.05, 0.05],  # head
            [0.20, 0.10, 0.70],  # out-of-scope class (label 2) wins
            [0.90, 0.05, 0.05],  # far from every agent's examples
            [0.40, 0.35, 0.25],  # under the threshold
            [0.55, 0.44, 0.01],  # top two within the margin
            [0.80, 0.15, 0.05],  # runner-up's examples are near too
            [0.42, 0.40, 0.18],  # under the threshold, but both agents are near: "A or B?"
        ]
    )
    sims = np.array(
        [
            [0.8, 0.2, 0.0],
            [0.8, 0.2, 0.9],
            [0.1, 0.1, 0.9],  # near only to out-of-scope examples: still far
            [0.8, 0.2, 0.0],
            [0.8, 0.2, 0.0],
            [0.8, 0.7, 0.0],
            [0.8, 0.7, 0.0],
        ]
    )
    _, _, rules = apply_rules(
        probs, sims, oos_index=2, threshold=0.45, ambiguity_margin=0.15, far=0.3, near=0.6
    )
    assert [RULES[r] for r in rules] == [
        "head",
        "out_of_scope_class",
        "far_from_examples",
        "low_confidence",
        "ambiguous",
        "ambiguous",
        "ambiguous",
    ]
    # Without similarities only the head's rules apply.
    _, _, head_rules = apply_rules(
        probs, None, oos_index=2, threshold=0.45, ambiguity_margin=0.15, far=0.3, near=0.6
    )
    assert RULES[head_rules[2]] == "head" and RULES[head_rules[5]] == "head"


def test_recall_threshold_is_zero_when_other_rules_already_reject_most_in_scope_texts() -> None:
    probs = np.array([[0.9, 0.05, 0.05]] * 6 + [[0.3, 0.3, 0.4]] * 2)
    targets = np.array([0] * 6 + [2] * 2)
    anyway = np.array([True] * 4 + [False] * 4)  # two thirds of the in-scope texts
    assert choose_threshold(probs, targets, 2, oos_recall=0.9, rejected_anyway=anyway) == 0.0
