"""Fitting the head ensemble on embeddings: stratified folds, early stopping on each held-out fold,
and the out-of-fold logits that calibration and the out-of-scope threshold are chosen on.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from swarm.router.model import HeadConfig, RouterHead

__all__ = ["FittedEnsemble", "fit_ensemble", "should_refit", "stratified_folds"]

StepFn = Callable[[int], None]
"""Called with 1 after each epoch of each member: drives a progress bar."""


@dataclass
class FittedEnsemble:
    heads: list[RouterHead]
    held_out_logits: np.ndarray
    """(n, labels): each example's logits from the member that did not train on it (NaN rows for
    examples no member held out, which happens only with one member and no validation split)."""
    epochs: list[int]
    """Best epoch of each member."""


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number per example, each label spread evenly over the folds (shuffled within)."""
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(labels), dtype=np.int64)
    offset = 0
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        # Rotating the start keeps small labels from always landing in fold 0.
        assignment[idx] = (np.arange(len(idx)) + offset) % folds
        offset += len(idx)
    return assignment


def fit_ensemble(
    x: np.ndarray,
    y: np.ndarray,
    n_labels: int,
    config: HeadConfig,
    *,
    validation_fraction: float = 0.15,
    step: StepFn | None = None,
) -> FittedEnsemble:
    """Train `config.members` heads. With several members, member i validates on fold i and trains
    on the rest (k-fold); with one, a stratified `validation_fraction` is held out."""
    torch.manual_seed(config.seed)
    members = max(1, config.members)
    if members > 1:
        folds = stratified_folds(y, members, config.seed)
    else:
        parts = max(2, round(1 / validation_fraction)) if validation_fraction > 0 else 1
        folds = stratified_folds(y, parts, config.seed) if parts > 1 else np.ones(len(y), np.int64)
    held_out = np.full((len(y), n_labels), np.nan, dtype=np.float32)
    heads: list[RouterHead] = []
    epochs: list[int] = []
    for member in range(members):
        val_mask = folds == member
        train_mask = ~val_mask
        if not train_mask.any():  # tiny data: a fold that is everything trains on everything
            train_mask = np.ones(len(y), bool)
            val_mask = np.zeros(len(y), bool)
        head, best_epoch = _fit_one(
            x[train_mask], y[train_mask], x[val_mask], y[val_mask], n_labels, config, member, step
        )
        if val_mask.any():
            held_out[val_mask] = _logits(head, x[val_mask])
        heads.append(head)
        epochs.append(best_epoch)
    if should_refit(config, y) and val_any(folds, members):
        # The folds chose the epoch count and gave the held-out logits; now each member
        # learns from every example for that many epochs (with 10 examples a label, the fifth
        # held out matters). Calibration stays on the fold models' held-out logits.
        # The median epoch count, not each member's own: a fold whose held-out part has a label
        # it never saw stops early, and that count says little about training on everything.
        refit_epochs = max(1, int(np.median(epochs)))
        empty_x, empty_y = x[:0], y[:0]
        heads = [
            _fit_one(
                x, y, empty_x, empty_y, n_labels, config, members + m, step, epochs=refit_epochs
            )[0]
            for m in range(members)
        ]
    return FittedEnsemble(heads, held_out, epochs)


def should_refit(config: HeadConfig, y: np.ndarray) -> bool:
    """Whether `fit_ensemble` retrains the members on all examples after the folds."""
    if config.refit is not None:
        return config.refit
    return bool(np.median(np.bincount(y)[np.bincount(y) > 0]) < 30)


def val_any(folds: np.ndarray, members: int) -> bool:
    """True when some member held examples out (so there is something to refit on)."""
    return bool(np.isin(folds, np.arange(members)).any())


def _logits(head: RouterHead, x: np.ndarray) -> np.ndarray:
    head.eval()
    with torch.no_grad():
        return head(torch.from_numpy(x)).numpy()


def _fit_one(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_labels: int,
    config: HeadConfig,
    member: int,
    step: StepFn | None,
    *,
    epochs: int | None = None,
) -> tuple[RouterHead, int]:
    """One head; early-stopped on (x_val, y_val), or trained for exactly `epochs` without them."""
    generator = torch.Generator().manual_seed(config.seed * 1000 + member)
    torch.manual_seed(config.seed * 1000 + member)
    head = RouterHead(x_train.shape[1], n_labels, config)
    optimiser = torch.optim.AdamW(
        head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    xv, yv = torch.from_numpy(x_val), torch.from_numpy(y_val)
    # A few hundred agent examples would make one 256-batch an epoch: too few steps to learn from.
    batch_size = max(1, min(config.batch_size, max(16, math.ceil(len(yt) / 8))))
    steps_per_epoch = max(1, math.ceil(len(yt) / batch_size))
    best_loss, best_epoch, best_state, stale = math.inf, 0, copy.deepcopy(head.state_dict()), 0
    beta = torch.distributions.Beta(config.mixup, config.mixup) if config.mixup > 0 else None
    max_epochs = epochs if epochs is not None else config.max_epochs
    for epoch in range(1, max_epochs + 1):
        head.train()
        order = torch.randperm(len(yt), generator=generator)
        for s in range(steps_per_epoch):
            batch = order[s * batch_size : (s + 1) * batch_size]
            xb, yb = xt[batch], yt[batch]  # (batch, dim), (batch,)
            if beta is not None and len(batch) > 1:
                lam = float(beta.sample())
                perm = torch.randperm(len(batch), generator=generator)
                logits = head(lam * xb + (1 - lam) * xb[perm])
                loss = lam * F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing) + (
                    1 - lam
                ) * F.cross_entropy(logits, yb[perm], label_smoothing=config.label_smoothing)
            else:
                loss = F.cross_entropy(head(xb), yb, label_smoothing=config.label_smoothing)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        if step is not None:
            step(1)
        if len(yv) == 0:  # nothing to validate on: train for the full budget
            best_epoch = epoch
            continue
        head.eval()
        with torch.no_grad():
            val_loss = float(F.cross_entropy(head(xv), yv))
        if val_loss < best_loss - 1e-4:
            best_loss, best_epoch, best_state, stale = (
                val_loss,
                epoch,
                copy.deepcopy(head.state_dict()),
                0,
            )
        else:
            stale += 1
            if stale >= config.patience:
                break
    if step is not None and epoch < config.max_epochs:
        step(config.max_epochs - epoch)  # the bar counts the epochs skipped as done
    if len(yv):
        head.load_state_dict(best_state)
    head.eval()
    return head, best_epoch
