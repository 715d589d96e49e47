"""A BERT sentence encoder in plain numpy: tokenise, n transformer layers, mean-pool, normalise.

It no longer serves (ONNX Runtime does, see `onnx.py`): it stays as an independent reference
that the tests and `benchmarks/encoders.py` compare against. Its output matches
sentence-transformers' `encode(normalize_embeddings=True)` to ~1e-6. The router's head reuses
its GELU.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BertConfig", "BertWeights", "NumpyBert"]


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    layer_norm_eps: float = 1e-12
    max_position_embeddings: int = 512
    max_seq_length: int = 256

    @classmethod
    def from_folder(cls, folder: Path) -> BertConfig:
        raw = json.loads((folder / "config.json").read_text())
        max_seq = raw.get("max_position_embeddings", 512)
        st_config = folder / "sentence_bert_config.json"
        if st_config.exists():
            max_seq = min(max_seq, json.loads(st_config.read_text()).get("max_seq_length", max_seq))
        return cls(
            hidden_size=raw["hidden_size"],
            num_hidden_layers=raw["num_hidden_layers"],
            num_attention_heads=raw["num_attention_heads"],
            intermediate_size=raw["intermediate_size"],
            layer_norm_eps=raw.get("layer_norm_eps", 1e-12),
            max_position_embeddings=raw.get("max_position_embeddings", 512),
            max_seq_length=max_seq,
        )


class BertWeights:
    """The tensors of a BertModel checkpoint, by layer, as float32 arrays laid out for `x @ W`."""

    def __init__(self, tensors: Mapping[str, np.ndarray], config: BertConfig) -> None:
        # Checkpoints from BertForX prefix every name with "bert."; BertModel ones do not.
        t = {k.removeprefix("bert."): v for k, v in tensors.items()}

        def get(name: str) -> np.ndarray:
            return np.ascontiguousarray(t[name], dtype=np.float32)

        self.word = get("embeddings.word_embeddings.weight")  # (vocab, hidden)
        self.position = get("embeddings.position_embeddings.weight")  # (max_pos, hidden)
        self.token_type0 = get("embeddings.token_type_embeddings.weight")[0]  # (hidden,)
        self.emb_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers: list[dict[str, Any]] = []
        for i in range(config.num_hidden_layers):
            p = f"encoder.layer.{i}."
            # One fused (hidden, 3*hidden) product for q, k and v: fewer, larger BLAS calls.
            qkv_w = np.concatenate(
                [get(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")]
            ).T
            qkv_b = np.concatenate(
                [get(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")]
            )
            self.layers.append(
                {
                    "qkv_w": np.ascontiguousarray(qkv_w),
                    "qkv_b": qkv_b,
                    "out_w": np.ascontiguousarray(get(p + "attention.output.dense.weight").T),
                    "out_b": get(p + "attention.output.dense.bias"),
                    "ln1": (
                        get(p + "attention.output.LayerNorm.weight"),
                        get(p + "attention.output.LayerNorm.bias"),
                    ),
                    "up_w": np.ascontiguousarray(get(p + "intermediate.dense.weight").T),
                    "up_b": get(p + "intermediate.dense.bias"),
                    "down_w": np.ascontiguousarray(get(p + "output.dense.weight").T),
                    "down_b": get(p + "output.dense.bias"),
                    "ln2": (get(p + "output.LayerNorm.weight"), get(p + "output.LayerNorm.bias")),
                }
            )


class NumpyBert:
    """Sentence embeddings from a BERT folder (config.json, model.safetensors, tokenizer.json)."""

    def __init__(self, folder: str | Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.config = BertConfig.from_folder(self.folder)
        self.weights = BertWeights(load_file(str(self.folder / "model.safetensors")), self.config)
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # padding is done per batch below, to the batch's longest text
        self.tokenizer.enable_truncation(self.config.max_seq_length)

    @property
    def dimension(self) -> int:
        return self.config.hidden_size

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(len(texts), hidden) float32, unit length. Batched by length, so little padding."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            out[chosen] = self._encode_ids([ids[i] for i in chosen])
        return out

    def _encode_ids(self, batch: list[list[int]]) -> np.ndarray:
        cfg, w = self.config, self.weights
        n, seq = len(batch), max(len(x) for x in batch)
        ids = np.zeros((n, seq), dtype=np.int64)
        mask = np.zeros((n, seq), dtype=np.float32)
        for row, token_ids in enumerate(batch):
            ids[row, : len(token_ids)] = token_ids
            mask[row, : len(token_ids)] = 1.0
        x = w.word[ids] + w.position[:seq] + w.token_type0  # (n, seq, hidden)
        x = _layer_norm(x, *w.emb_ln, cfg.layer_norm_eps)
        # Padded keys get -inf-like scores so no real token attends to them.
        key_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]  # (n, 1, 1, seq)
        heads, hidden = cfg.num_attention_heads, cfg.hidden_size
        head_dim = hidden // heads
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for layer in w.layers:
            flat = x.reshape(n * seq, hidden)
            qkv = flat @ layer["qkv_w"] + layer["qkv_b"]  # (n*seq, 3*hidden)
            # (3, n, heads, seq, head_dim)
            qkv = qkv.reshape(n, seq, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + key_bias  # (n, heads, seq, seq)
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n * seq, hidden)  # (n*seq, hidden)
            attended = context @ layer["out_w"] + layer["out_b"]
            ln1_gamma, ln1_beta = layer["ln1"]
            h = _layer_norm(
                attended + flat, ln1_gamma, ln1_beta, cfg.layer_norm_eps
            )  # (n*seq, hidden)
            up = h @ layer["up_w"]  # (n*seq, intermediate)
            up += layer["up_b"]
            _gelu_inplace(up)
            down = up @ layer["down_w"] + layer["down_b"]
            ln2_gamma, ln2_beta = layer["ln2"]
            x = _layer_norm(down + h, ln2_gamma, ln2_beta, cfg.layer_norm_eps).reshape(
                n, seq, hidden
            )
        summed = (x * mask[:, :, None]).sum(axis=1)  # (n, hidden): mean over real tokens only
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = np.mean(np.square(centered), axis=-1, keepdims=True)
    return centered / np.sqrt(var + np.float32(eps)) * gamma + beta


# Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, enough to match torch's exact-erf GELU to ~1e-6 in
# the embeddings; numpy has no erf and scipy is not a dependency.
_P = np.float32(0.3275911)
_A = [np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)]
_INV_SQRT2 = np.float32(1 / np.sqrt(2))
_HALF = np.float32(0.5)
_GELU_ROWS = 64
"""Rows per chunk: a (64, 1536) float32 block stays in L2 cache through the ~20 passes below,
which makes GELU 3-4x faster than streaming the whole (tokens, 1536) matrix through memory."""


def _gelu_inplace(x: np.ndarray) -> None:
    """x <- x * Phi(x) (exact-erf GELU), in place, chunk by chunk of rows."""
    rows = x.reshape(-1, x.shape[-1])
    for start in range(0, len(rows), _GELU_ROWS):
        _gelu_chunk(rows[start : start + _GELU_ROWS])


def _gelu_chunk(x: np.ndarray) -> None:
    # With q = (1 - erf(|x|/sqrt 2)) / 2:  gelu(x) = max(x, 0) - |x| * q  for either sign of x.
    a = np.abs(x)
    z = a * _INV_SQRT2
    t = z * _P
    t += 1
    np.reciprocal(t, out=t)
    poly = _A[4] * t
    for c in (_A[3], _A[2], _A[1], _A[0]):
        poly += c
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z
    poly *= _HALF
    a *= poly
    np.maximum(x, 0, out=x)
    x -= a
