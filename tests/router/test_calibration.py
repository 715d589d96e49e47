"""Temperature scaling, the out-of-scope threshold, ECE and AUROC."""

from __future__ import annotations

import numpy as np

from swarm.router.calibration import (
    choose_threshold,
    expected_calibration_error,
    fit_temperature,
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
