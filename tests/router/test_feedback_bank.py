"""One correction on the bank demo's router (the real encoder): the retrain keeps what the router
knew and learns the correction. It once sent most suite texts out of scope (accuracy 1.00 ->
0.17): the rehearsal and the temperature refit moved the head's confidence under its threshold."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from swarm.agents import AgentRegistry
from swarm.console.retrain import suite_pairs
from swarm.feedback import record_feedback
from swarm.models import Task
from swarm.router import DEFAULT_ENCODER, TrainingData, load_encoder, training_data_for
from swarm.router.learn import HeldOut, learn
from swarm.router.metrics import evaluate
from swarm.router.train import TrainConfig, train_router
from swarm.trace import TraceStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "examples" / "swarm_examples" / "bank" / "suites"
CORRECTED = "my plastic got swallowed by the cash machine"


def test_one_correction_keeps_the_bank_router_and_is_learnt(tmp_path: Path) -> None:
    registry = AgentRegistry()
    registry.load_module("swarm_examples.bank")
    [pack] = [p for p in registry.packs if p.training_rows()]
    rows = pack.training_rows()
    # A slice of the pack's BANKING77 rows, so the test trains in seconds: 25 a label.
    by_label: dict[str, list[tuple[str, str]]] = {}
    for text, label in rows:
        by_label.setdefault(label, []).append((text, label))
    rng = random.Random(0)
    training = TrainingData()
    training.add_pairs(
        [r for group in by_label.values() for r in rng.sample(group, min(25, len(group)))],
        "bank training data (slice)",
    )
    data = training_data_for(registry, training)
    router, _ = train_router(data, TrainConfig(), encoder=load_encoder(DEFAULT_ENCODER))
    oos = router.policy.oos_label or "oos"
    held_out = HeldOut.of(
        "bank suites", suite_pairs([str(SUITES)], router.head_labels, oos, explicit=True)
    )
    before = evaluate(router, held_out.texts, held_out.labels).accuracy
    assert router.route([CORRECTED])[0].agent != "cards"  # the case worth correcting

    db = f"sqlite:///{tmp_path / 'trace.db'}"
    with TraceStore(db) as store:
        task = Task(text=CORRECTED)
        store.task_queued(task)
        store.record_decision(task.id, router.route([CORRECTED])[0])
        record_feedback(store, task.id, "correction", agent="cards")
        feedback = store.feedback()
    outcome = learn(None, base=router, feedback_rows=feedback, held_out=held_out)

    new = outcome.router
    after = evaluate(new, held_out.texts, held_out.labels).accuracy
    assert after >= before - 0.03, (before, after)
    assert new.route([CORRECTED])[0].agent == "cards"
    assert new.policy.temperature <= router.policy.temperature * 1.5  # the scale it serves at
    assert outcome.gate.promoted, outcome.gate.reason
