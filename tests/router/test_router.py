"""Deciding: routed, out of scope (learnt and by threshold), ambiguous; batching and explain."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import numpy as np

from swarm.router import Router, RoutingPolicy, TrainingData
from swarm.router.calibration import describe_calibration
from swarm.router.train import TrainConfig, train_router
from swarm.testing.encoders import HashEncoder


def test_routes_in_scope_texts_to_their_agent(trained: Router) -> None:
    decisions = trained.route(
        ["my card has not arrived yet", "show my account balance", "book a flight to rome"]
    )
    assert [d.agent for d in decisions] == ["cards", "accounts", "travel"]
    for d in decisions:
        assert d.status in ("routed", "ambiguous")
        assert d.version == trained.version and d.latency_ms > 0
        probs = [p for _, p in d.candidates]
        assert probs == sorted(probs, reverse=True) and d.confidence == probs[0]
        assert "oos" not in [a for a, _ in d.candidates]  # the out-of-scope label is no agent


def test_learnt_out_of_scope_is_rejected_with_reason(trained: Router) -> None:
    (d,) = trained.route(["tell me a joke about the weather"])
    assert d.agent is None and d.status == "out_of_scope"
    assert d.reason.startswith("out of scope")


def test_labels_exclude_the_out_of_scope_label(trained: Router) -> None:
    assert trained.labels == ["accounts", "cards", "travel"]
    assert "oos" in trained.head_labels


def _with_policy(router: Router, **changes: object) -> Router:
    router.policy = dataclasses.replace(router.policy, **changes)
    return router


def test_threshold_rejects_low_confidence(trained: Router) -> None:
    text = ["my card has not arrived"]
    (before,) = trained.route(text)
    assert before.agent == "cards"
    (after,) = _with_policy(trained, threshold=before.confidence + 1e-6).route(text)
    assert after.agent is None and after.status == "out_of_scope"
    assert after.confidence == before.confidence


def test_close_top_two_is_ambiguous(trained: Router) -> None:
    text = ["my card has not arrived"]
    (d,) = trained.route(text)
    gap = d.candidates[0][1] - d.candidates[1][1]
    (sure,) = _with_policy(trained, ambiguity_margin=gap - 1e-6).route(text)
    (unsure,) = _with_policy(trained, ambiguity_margin=gap + 1e-6).route(text)
    assert sure.status == "routed"
    assert unsure.status == "ambiguous" and unsure.agent == "cards"
    assert unsure.reason.startswith("ambiguous: cards")


def test_batch_equals_one_at_a_time(trained: Router) -> None:
    texts = ["block my card", "hotel in paris", "open a savings account", "play music"]
    batch = trained.route(texts)
    single = [trained.route([t])[0] for t in texts]
    for a, b in zip(batch, single, strict=True):
        assert a.agent == b.agent and a.status == b.status
        assert abs(a.confidence - b.confidence) < 1e-5
    assert trained.route([]) == []


def test_router_without_oos_examples_still_rejects_by_threshold(
    labelled_rows: list[tuple[str, str]],
    tmp_path: Path,
    make_data,
    fast_config: TrainConfig,  # type: ignore[no-untyped-def]
) -> None:
    fast_config.target_rejection = 0.1
    router, report = train_router(
        make_data(with_oos=False), fast_config, encoder=HashEncoder(128), cache_dir=tmp_path
    )
    assert router.policy.threshold > 0
    assert report.metrics["threshold"] == router.policy.threshold
    assert router.labels == router.head_labels == ["accounts", "cards", "travel"]
    # Nothing taught it what to reject, yet the threshold turns away the texts least like any
    # example, while the examples themselves stay routed.
    unseen = [t for t, label in labelled_rows if label == "oos"]
    examples = [t for t, label in labelled_rows if label != "oos"]
    assert sum(d.agent is None for d in router.route(unseen)) >= 2
    assert all(d.agent is not None for d in router.route(examples))


def test_explain_shows_candidates_and_nearest_examples(trained: Router) -> None:
    e = trained.explain("my card never came", k=2)
    assert e.decision.agent == "cards"
    assert list(e.behind) == [a for a, _ in e.decision.candidates[:2]]
    assert all(n.label == "cards" for n in e.behind["cards"])
    assert e.nearest[0].text == "my card never came in the post"
    sims = [n.similarity for n in e.nearest]
    assert sims == sorted(sims, reverse=True)
    as_dict = e.to_dict()
    assert as_dict["candidates"][0]["agent"] == "cards"


def test_explanation_renders(trained: Router, console_text) -> None:  # type: ignore[no-untyped-def]
    text = console_text(trained.explain("block my card"))
    assert "cards" in text and "nearest" in text and "block my card please" in text


def test_train_report_counts_sources(
    encoder: HashEncoder,
    tmp_path: Path,
    make_data,
    fast_config: TrainConfig,  # type: ignore[no-untyped-def]
) -> None:
    _, report = train_router(make_data(), fast_config, encoder=encoder, cache_dir=tmp_path)
    assert report.sources == {"cards file": 6, "accounts file": 6, "travel file": 6, "oos file": 6}
    assert report.examples == 24 and report.labels == 4
    assert 0 <= report.metrics["heldout_accuracy"] <= 1
    assert len(report.epochs) == fast_config.head.members


def test_training_is_reproducible(
    encoder: HashEncoder,
    tmp_path: Path,
    make_data,
    fast_config: TrainConfig,  # type: ignore[no-untyped-def]
) -> None:
    a, _ = train_router(make_data(), fast_config, encoder=encoder, cache_dir=tmp_path)
    b, _ = train_router(make_data(), fast_config, encoder=encoder, cache_dir=tmp_path)
    for name in a.weights:
        np.testing.assert_array_equal(a.weights[name], b.weights[name])
    assert a.version == b.version or a.version[-6:] == b.version[-6:]


def test_policy_defaults_are_safe() -> None:
    p = RoutingPolicy()
    assert p.threshold == 0.0 and p.temperature == 1.0 and p.oos_label == "oos"


def test_explain_shows_only_the_top_k(trained: Router) -> None:
    e = trained.explain("book a flight to rome", k=1)
    assert [c["agent"] for c in e.to_dict()["candidates"]] == ["travel"]
    assert len(e.decision.candidates) > 1  # the decision itself keeps all its candidates


def test_each_decision_names_the_rule_that_decided(trained: Router) -> None:
    text = ["my card has not arrived"]
    (d,) = trained.route(text)
    assert d.rule in ("head", "ambiguous") and d.to_dict()["rule"] == d.rule
    (low,) = _with_policy(trained, threshold=d.confidence + 1e-6).route(text)
    assert low.rule == "low_confidence" and "under the threshold" in low.reason
    (joke,) = _with_policy(trained, threshold=0.0).route(["tell me a joke about the weather"])
    assert joke.rule == "out_of_scope_class"


def test_far_from_every_agents_examples_is_out_of_scope(trained: Router) -> None:
    # The hash encoder shares no words between these and the examples: similarity near 0.
    text = ["zebra quantum saxophone"]
    router = _with_policy(trained, threshold=0.0, oos_label=None, far_similarity=0.5)
    sims = router.similarities(router.encoder.encode(text))
    assert sims is not None and sims.max() < 0.5
    (d,) = router.route(text)
    assert d.agent is None and d.rule == "far_from_examples"
    assert "far from the training examples" in d.reason
    # An in-scope text is near its agent's examples and keeps its route.
    (ok,) = router.route(["my card has not arrived"])
    assert ok.agent == "cards"


def test_runner_up_near_by_examples_is_ambiguous(trained: Router) -> None:
    text = ["my card has not arrived"]
    router = _with_policy(trained, ambiguity_margin=0.0)
    (d,) = router.route(text)
    runner_up = d.candidates[1][0]
    sims = router.similarities(router.encoder.encode(text))
    assert sims is not None
    second = float(sims[0][router.head_labels.index(runner_up)])
    (sure,) = _with_policy(router, near_similarity=second + 1e-4).route(text)
    (unsure,) = _with_policy(router, near_similarity=second - 1e-4).route(text)
    assert sure.status == "routed" and unsure.status == "ambiguous" and unsure.agent == "cards"


def test_policy_with_similarity_cuts_survives_save_and_load(
    trained: Router, models_dir: Path
) -> None:
    # The far cut is trained only without out-of-scope examples (small_data() has some): set one
    # as such a router has, with the near cut the defaults trained.
    assert trained.policy.far_similarity is None and trained.policy.near_similarity is not None
    trained.policy = replace(trained.policy, far_similarity=0.2)
    folder = trained.save(models_dir)
    loaded = Router.load(folder, encoder=trained.encoder)
    assert loaded.policy == trained.policy
    texts = ["my card has not arrived", "zebra quantum saxophone", "book a flight to rome"]
    assert [d.to_dict() | {"latency_ms": 0} for d in loaded.route(texts)] == [
        d.to_dict() | {"latency_ms": 0, "version": loaded.version} for d in trained.route(texts)
    ]
    # A policy written before the similarity rules existed loads with them off.
    old = {"temperature": 0.5, "threshold": 0.2, "ambiguity_margin": 0.1, "oos_label": "oos"}
    assert RoutingPolicy.from_dict(old).far_similarity is None


def test_explain_shows_the_rule_and_similarities(trained: Router, console_text) -> None:  # type: ignore[no-untyped-def]
    e = trained.explain("block my card")
    as_dict = e.to_dict()
    assert as_dict["rule"] == e.decision.rule
    assert as_dict["candidates"][0]["nearest_similarity"] is not None
    assert f"rule {e.decision.rule}" in console_text(e)


def test_readme_sized_agents_claim_no_ece_and_keep_t_at_least_one(
    encoder: HashEncoder, tmp_path: Path
) -> None:
    data = TrainingData()
    data.add_pairs([(t, "cards") for t in ["my card has not arrived", "block my card"]], "a")
    data.add_pairs([(t, "travel") for t in ["book a flight", "find me a hotel"]], "b")
    data.add_pairs([("open a savings account", "accounts"), ("show my balance", "accounts")], "c")
    router, report = train_router(data, encoder=encoder, cache_dir=tmp_path)
    assert router.policy.temperature >= 1.0
    assert "heldout_ece" not in report.metrics
    assert "not enough held-out data to measure calibration" in describe_calibration(report.metrics)
