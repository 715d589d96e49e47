"""The torch head and the numpy forward that serves it must compute the same logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swarm.router import Router, RoutingPolicy
from swarm.router.model import HeadConfig, RouterHead, export_ensemble
from swarm.testing.encoders import HashEncoder


@pytest.mark.parametrize(
    "config",
    [
        HeadConfig(hidden=32),
        HeadConfig(hidden=0),
        HeadConfig(hidden=32, cosine_scale=-1),
        HeadConfig(hidden=0, cosine_scale=20.0),
    ],
    ids=["mlp", "linear", "cosine-mlp", "cosine-linear"],
)
def test_numpy_serving_matches_torch_ensemble(config: HeadConfig) -> None:
    torch.manual_seed(0)
    heads = [RouterHead(16, 5, config).eval() for _ in range(3)]
    for h in heads:  # move away from the initialisation so biases and scales matter
        with torch.no_grad():
            for p in h.parameters():
                p.add_(torch.randn_like(p) * 0.1)
    x = torch.nn.functional.normalize(torch.randn(7, 16), dim=-1)
    with torch.no_grad():
        expected = torch.stack([h(x) for h in heads]).mean(0).numpy()
    weights, groups = export_ensemble(heads)
    router = Router(
        HashEncoder(16),
        {k: v.numpy() for k, v in weights.items()},
        [f"l{i}" for i in range(5)],
        RoutingPolicy(),
        normalize_groups=groups,
    )
    np.testing.assert_allclose(router.logits(x.numpy()), expected, atol=2e-5)


def test_dropout_only_in_training() -> None:
    head = RouterHead(8, 3, HeadConfig(hidden=16, dropout=0.5))
    x = torch.randn(4, 8)
    head.train()
    assert not torch.equal(head(x), head(x))
    head.eval()
    assert torch.equal(head(x), head(x))


def test_refit_lets_every_member_learn_every_example() -> None:
    from swarm.router.fit import fit_ensemble, should_refit

    rng = np.random.default_rng(0)
    centres = np.eye(8, dtype=np.float32)[:3] * 3
    x = np.concatenate(
        [
            centres[0] + rng.normal(0, 0.1, (12, 8)),
            centres[1] + rng.normal(0, 0.1, (12, 8)),
            centres[2:3],
        ]
    )
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    y = np.array([0] * 12 + [1] * 12 + [2])  # label 2 has a single example
    config = HeadConfig(
        hidden=16, members=3, max_epochs=40, patience=40, label_smoothing=0.0, learning_rate=0.05
    )
    assert should_refit(config, y)  # few examples per label: refit by default

    def votes(refit: bool) -> list[int]:
        config.refit = refit
        fitted = fit_ensemble(x, y, 3, config)
        with torch.no_grad():
            return [int(h(torch.from_numpy(x[-1:])).argmax()) for h in fitted.heads]

    assert votes(True) == [2, 2, 2]
    without = votes(False)
    assert 2 in without and without.count(2) < 3  # the member that held it out never saw it
