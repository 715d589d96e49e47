"""A deterministic stand-in for the sentence encoder: texts that share words get similar vectors.

No model, no download, microseconds per text: for unit tests of the router and of your own agents.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

__all__ = ["HashEncoder"]

_WORD = re.compile(r"[a-z0-9']+")


class HashEncoder:
    """Bag of words and word bigrams hashed into `dimension` signed buckets, then normalised.

    Same text, same vector, on every machine. `load_encoder("hash")` (or `"hash:DIM"`) builds one,
    so artifacts trained with it load again without code.
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
