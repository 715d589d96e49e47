"""Scoring decisions: accuracy, macro-F1, confused pairs and out-of-scope metrics."""

from __future__ import annotations

import json

import pytest

from swarm.models import Decision
from swarm.router import Router
from swarm.router.metrics import evaluate, macro_f1, score_decisions


def d(agent: str | None, conf: float, second: str = "x") -> Decision:
    best = agent or "cards"
    status = "routed" if agent else "out_of_scope"
    return Decision(agent, conf, ((best, conf), (second, 1 - conf)), status=status)


def test_scores_a_hand_made_set() -> None:
    decisions = [d("cards", 0.9), d("cards", 0.8), d("loans", 0.6), d(None, 0.3), d("cards", 0.7)]
    labels = ["cards", "cards", "cards", "oos", "oos"]
    r = score_decisions(decisions, labels)
    assert r.accuracy == pytest.approx(3 / 5)
    assert r.in_scope_accuracy == pytest.approx(2 / 3)
    assert r.oos_recall == pytest.approx(1 / 2)
    # Confidences of in-scope rows (0.9, 0.8, 0.6) vs out-of-scope rows (0.3, 0.7): 5 of 6 pairs.
    assert r.auroc == pytest.approx(5 / 6)
    assert r.rejected_rate == pytest.approx(1 / 5)
    assert ("oos", "cards", 1) in r.confused and ("cards", "loans", 1) in r.confused
    cards = next(s for s in r.per_label if s.label == "cards")
    assert cards.precision == pytest.approx(2 / 3) and cards.recall == pytest.approx(2 / 3)


def test_no_oos_rows_means_no_oos_metrics() -> None:
    r = score_decisions([d("a", 0.9), d("b", 0.9)], ["a", "a"])
    assert r.oos_recall is None and "oos_recall" not in r.to_dict()
    assert r.accuracy == 0.5


def test_macro_f1() -> None:
    assert macro_f1(["a", "a", "b", "b"], ["a", "a", "b", "b"]) == 1.0
    assert macro_f1(["a", "b"], ["b", "a"]) == 0.0


def test_evaluate_a_router_and_render(trained: Router, console_text) -> None:  # type: ignore[no-untyped-def]
    texts = [
        "my card has not arrived",
        "open a savings account",
        "tell me a joke",
        "flights to rome",
    ]
    labels = ["cards", "accounts", "oos", "unknown_agent"]
    r = evaluate(trained, texts, labels)
    assert r.examples == 4 and r.version == trained.version
    assert r.unknown_labels == {"unknown_agent": 1}
    out = r.to_dict()
    json.dumps(out)
    assert {"accuracy", "macro_f1", "ece", "in_scope_accuracy", "oos_recall", "auroc"} <= set(out)
    text = console_text(r)
    assert "accuracy" in text and "per label" in text and "unknown_agent" in text
