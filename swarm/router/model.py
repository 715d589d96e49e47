"""The router's learned part: a small torch head over frozen sentence embeddings, and its config.

Training lives in `train.py`; serving runs the same arithmetic in numpy (`router.py`, no torch
import), from the weights saved here by name. A test checks the two agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["HeadConfig", "RouterHead", "ServingHead", "export_ensemble"]


@dataclass
class HeadConfig:
    """Shape and training of the head. Defaults train in seconds on cached embeddings."""

    hidden: int = 512
    """Width of the hidden layer; 0 makes the head a linear (logistic-regression) classifier."""
    dropout: float = 0.1
    """On the input embedding and the hidden layer."""
    cosine_scale: float = 0.0
    """> 0: cosine classifier (unit class vectors, logits = scale * cos); < 0: the same with a
    learnt scale; 0: a plain linear output layer."""
    members: int = 5
    """Ensemble size; each member trains on a different fold and its held-out fold validates it."""
    label_smoothing: float = 0.1
    learning_rate: float = 4e-3
    weight_decay: float = 1e-2
    batch_size: int = 256
    """Upper bound: small data sets use smaller batches so each epoch still takes several steps."""
    max_epochs: int = 80
    patience: int = 8
    """Epochs without a better validation loss before a member stops (early stopping)."""
    mixup: float = 0.0
    """> 0: mix pairs of embeddings and their targets with weights ~ Beta(mixup, mixup)."""
    refit: bool | None = None
    """After the folds chose the epoch count (their median), retrain each member on all examples.
    None: only when labels have few examples (median under 30), where the held-out fifth matters;
    with more, it doubles training time for no measurable gain."""
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HeadConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


class RouterHead(nn.Module):
    """embedding (batch, dim) -> logits (batch, labels): dropout, [Linear, GELU, dropout], out."""

    def __init__(self, dim: int, labels: int, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.dropout = nn.Dropout(config.dropout)
        self.hidden = nn.Linear(dim, config.hidden) if config.hidden > 0 else None
        width = config.hidden if config.hidden > 0 else dim
        self.out = nn.Linear(width, labels, bias=config.cosine_scale == 0)
        # A learnt log-scale only when asked for; a fixed scale is a constant, not a parameter.
        self.log_scale = (
            nn.Parameter(torch.tensor(float(torch.log(torch.tensor(16.0)))))
            if config.cosine_scale < 0
            else None
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)  # (batch, dim)
        if self.hidden is not None:
            x = self.dropout(F.gelu(self.hidden(x)))  # (batch, hidden)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        if self.config.cosine_scale == 0:
            return self.out(h)  # (batch, labels)
        scale = self.log_scale.exp() if self.log_scale is not None else self.config.cosine_scale
        return scale * F.normalize(h, dim=-1) @ F.normalize(self.out.weight, dim=-1).T

    def export(self) -> dict[str, torch.Tensor]:
        """Weights by the names the numpy forward in `router.py` reads, with the scale folded in."""
        out: dict[str, torch.Tensor] = {}
        if self.hidden is not None:
            out["hidden.weight"] = self.hidden.weight.detach().T.contiguous()  # (dim, hidden)
            out["hidden.bias"] = self.hidden.bias.detach().clone()
        weight = self.out.weight.detach()
        if self.config.cosine_scale != 0:
            scale = (
                self.log_scale.exp().detach()
                if self.log_scale is not None
                else self.config.cosine_scale
            )
            weight = F.normalize(weight, dim=-1) * scale
        out["out.weight"] = weight.T.contiguous()  # (width, labels)
        if self.out.bias is not None:
            out["out.bias"] = self.out.bias.detach().clone()
        return out


def export_ensemble(heads: list[RouterHead]) -> tuple[dict[str, torch.Tensor], int]:
    """Fold an ensemble into one wide head whose logits are the members' mean logits.

    Members' hidden layers sit side by side, (dim, members*hidden), and the output layer stacks
    theirs divided by the member count, so serving does two matrix products whatever the size.
    Returns the weights and the group size for per-member feature normalisation (0: none).
    """
    parts = [h.export() for h in heads]
    m = len(parts)
    config = heads[0].config
    out: dict[str, torch.Tensor] = {}
    if "hidden.weight" in parts[0]:
        out["hidden.weight"] = torch.cat(
            [p["hidden.weight"] for p in parts], dim=1
        )  # (dim, m*hidden)
        out["hidden.bias"] = torch.cat([p["hidden.bias"] for p in parts])  # (m*hidden,)
        out["out.weight"] = (
            torch.cat([p["out.weight"] for p in parts], dim=0) / m
        )  # (m*hidden, labels)
        groups = config.hidden if config.cosine_scale != 0 else 0
    else:
        # A linear head is linear in its weights: the mean of members is one matrix.
        out["out.weight"] = torch.stack([p["out.weight"] for p in parts]).mean(0)  # (dim, labels)
        groups = 0
    if "out.bias" in parts[0]:
        out["out.bias"] = torch.stack([p["out.bias"] for p in parts]).mean(0)  # (labels,)
    return out, groups


class ServingHead(nn.Module):
    """The folded serving weights (`export_ensemble`'s, as a saved router holds them) as a trainable
    module: the same arithmetic as `Router.logits`, so a saved router can be updated in place
    (learning from feedback) and exported again under the same names."""

    def __init__(self, weights: dict[str, Any], normalize_groups: int = 0) -> None:
        super().__init__()
        self.normalize_groups = normalize_groups
        self.params = nn.ParameterDict(
            {
                # A copy: training must not write into the serving router's arrays.
                name.replace(".", "_"): nn.Parameter(torch.tensor(value, dtype=torch.float32))
                for name, value in weights.items()
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params
        if "hidden_weight" in p:
            x = F.gelu(x @ p["hidden_weight"] + p["hidden_bias"])  # (batch, members*hidden)
            if self.normalize_groups:
                grouped = x.reshape(len(x), -1, self.normalize_groups)  # (batch, members, hidden)
                x = F.normalize(grouped, dim=-1).reshape(len(x), -1)
        out = x @ p["out_weight"]  # (batch, labels)
        if "out_bias" in p:
            out = out + p["out_bias"]
        return out

    def export(self) -> dict[str, Any]:
        """numpy weights by the names `Router` reads."""
        return {
            name.replace("_", "."): v.detach().numpy().copy() for name, v in self.params.items()
        }
