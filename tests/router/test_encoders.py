"""The hash encoder, the encoder factory and the on-disk embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swarm.errors import ConfigError
from swarm.router import CachedEncoder, EmbeddingCache, Encoder, load_encoder
from swarm.testing.encoders import HashEncoder


def test_hash_encoder_is_deterministic_normalised_and_word_sensitive() -> None:
    enc = HashEncoder(64)
    a = enc.encode(["block my card", "block my card", "book a flight to rome", ""])
    assert a.shape == (4, 64) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(a[0], a[1])
    np.testing.assert_array_equal(a[0], HashEncoder(64).encode(["Block my CARD"])[0])
    related = float(a[0] @ enc.encode(["please block my card now"])[0])
    unrelated = float(a[0] @ a[2])
    assert related > unrelated
    assert isinstance(enc, Encoder)


def test_load_encoder_builds_hash_encoders() -> None:
    enc = load_encoder("hash:32:7")
    assert isinstance(enc, HashEncoder) and enc.dimension == 32 and enc.seed == 7
    assert enc.fingerprint != load_encoder("hash:32").fingerprint
    with pytest.raises(ConfigError, match="hash:DIM"):
        load_encoder("hash:many")


def test_unknown_encoder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load encoder"):
        load_encoder(str(tmp_path / "no-such-model"))


def test_cache_avoids_re_encoding_across_instances(tmp_path: Path) -> None:
    base = HashEncoder(32)
    first = CachedEncoder(base, tmp_path)
    v1 = first.encode(["a b", "c d", "a b"])
    assert base.texts_encoded == 2  # the repeat inside one call is encoded once
    second = CachedEncoder(base, tmp_path)  # a new process would start like this
    v2 = second.encode(["c d", "a b", "e f"])
    assert base.texts_encoded == 3  # only "e f" was new
    np.testing.assert_array_equal(v2[0], v1[1])
    np.testing.assert_array_equal(v2[1], v1[0])
    np.testing.assert_array_equal(v2[2], base.encode(["e f"])[0])


def test_cache_keys_by_encoder_fingerprint(tmp_path: Path) -> None:
    CachedEncoder(HashEncoder(32), tmp_path).encode(["same text"])
    other = HashEncoder(32, seed=1)
    CachedEncoder(other, tmp_path).encode(["same text"])
    assert other.texts_encoded == 1


def test_damaged_cache_shard_is_only_a_miss(tmp_path: Path) -> None:
    base = HashEncoder(32)
    CachedEncoder(base, tmp_path).encode(["x"])
    for shard in tmp_path.rglob("*.npz"):
        shard.write_bytes(b"not a zip")
    cache = EmbeddingCache(tmp_path)
    assert cache.get(base.fingerprint, ["x"]) == [None]
    again = CachedEncoder(base, cache).encode(["x"])
    np.testing.assert_array_equal(again[0], base.encode(["x"])[0])


def test_progress_is_reported_for_hits_and_misses(tmp_path: Path) -> None:
    seen: list[int] = []
    enc = CachedEncoder(HashEncoder(32), tmp_path)
    enc.encode(["a", "b"], progress=seen.append)
    enc.encode(["a", "b", "c"], progress=seen.append)
    assert sum(seen) == 5
