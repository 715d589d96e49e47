"""A deterministic stand-in for the sentence encoder: texts that share words get similar vectors.

No model, no download, microseconds per text: for unit tests of the router and of your own agents.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from swarm.errors import ConfigError
from swarm.router.encoders import register_encoder

__all__ = ["HashEncoder", "hash_encoder_from_name"]

_WORD = re.compile(r"[a-z0-9']+")


class HashEncoder:
    """Bag of words and word bigrams hashed into `dimension` signed buckets, then normalised.

    Same text, same vector, on every machine. Once `swarm.testing` is imported (or swarm is
    installed, through the `swarm.encoders` entry point), `load_encoder("hash")`, `"hash:DIM"` or
    `"hash:DIM:SEED"` builds one, so artifacts trained with it load again by name.
    """

    def __init__(self, dimension: int = 256, *, seed: int = 0) -> None:
        if dimension < 8:
            raise ValueError("dimension must be at least 8")
        self.dimension = dimension
        self.seed = seed
        self.name = f"hash:{dimension}" if seed == 0 else f"hash:{dimension}:{seed}"
        self.fingerprint = hashlib.sha256(
            f"swarm-hash-encoder-v1:{self.name}".encode()
        ).hexdigest()[:16]
        self.calls = 0
        """How many times `encode` ran: tests use it to check the embedding cache."""
        self.texts_encoded = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            features = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
            for feature in features or ["<empty>"]:
                digest = hashlib.blake2b(f"{self.seed}:{feature}".encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dimension
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm > 0:
                out[row] /= norm
        return out


def hash_encoder_from_name(name: str) -> HashEncoder:
    """`hash`, `hash:DIM` or `hash:DIM:SEED` -> HashEncoder; ConfigError on anything else."""
    parts = name.split(":")
    try:
        if parts[0] != "hash" or len(parts) > 3:
            raise ValueError(name)
        dims = int(parts[1]) if len(parts) > 1 else 256
        seed = int(parts[2]) if len(parts) > 2 else 0
    except ValueError:
        raise ConfigError(f"bad hash encoder name {name!r}: expected hash:DIM[:SEED]") from None
    return HashEncoder(dims, seed=seed)


register_encoder("hash", hash_encoder_from_name)
