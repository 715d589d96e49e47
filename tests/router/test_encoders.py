"""The hash encoder, the encoder factory and its registry, the names that pick a backend, and the
on-disk embedding cache. No real model here: see test_real_encoder.py and test_onnx_export.py."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import swarm.router
from swarm.errors import ConfigError
from swarm.router import CachedEncoder, EmbeddingCache, Encoder, load_encoder, register_encoder
from swarm.router import encoders as encoders_module
from swarm.router.onnx import encoder_cache_dir, folder_variant, is_exportable_folder
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
    with pytest.raises(ConfigError, match="hash:DIM"):
        load_encoder("hash:8:1:2")


def test_registered_schemes_build_encoders_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoders_module, "_FACTORIES", dict(encoders_module._FACTORIES))
    seen: list[str] = []

    def factory(name: str) -> Encoder:
        seen.append(name)
        return HashEncoder(16, seed=5)

    register_encoder("mine", factory)
    enc = load_encoder("mine:anything")
    assert seen == ["mine:anything"] and enc.dimension == 16
    assert isinstance(load_encoder("mine"), HashEncoder) and seen[-1] == "mine"


def test_the_router_package_never_imports_the_test_doubles() -> None:
    """The doubles register themselves with the product; the product does not reach for them."""
    root = Path(swarm.router.__file__).parent
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.startswith("swarm.testing") for n in names), path


def test_backend_suffix_on_a_model_onnx_cannot_run_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "distil"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "distilbert"}))
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (folder / name).touch(exist_ok=True)
    assert not is_exportable_folder(folder)
    with pytest.raises(ConfigError, match="only BERT-family.*@sentence-transformers"):
        load_encoder(f"{folder}@onnx-int8")


def test_exportable_folders_are_bert_with_mean_pooling_only(tmp_path: Path) -> None:
    folder = tmp_path / "bert"
    (folder / "1_Pooling").mkdir(parents=True)
    for name in ("model.safetensors", "tokenizer.json"):
        (folder / name).touch()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert is_exportable_folder(folder)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert not is_exportable_folder(folder)  # CLS pooling: not what the export computes
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_mean_tokens": True})
    )
    assert is_exportable_folder(folder)
    modules = [{"type": "sentence_transformers.models.Dense"}]
    (folder / "modules.json").write_text(json.dumps(modules))
    assert not is_exportable_folder(folder)  # a Dense layer after pooling: sentence-transformers


def test_a_folder_names_its_serving_variant(tmp_path: Path) -> None:
    assert folder_variant(tmp_path) == "int8"
    (tmp_path / "swarm_encoder.json").write_text('{"variant": "fp32"}')
    assert folder_variant(tmp_path) == "fp32"
    (tmp_path / "swarm_encoder.json").write_text('{"variant": "int4"}')
    with pytest.raises(ConfigError, match="swarm_encoder.json.*int4"):
        folder_variant(tmp_path)


def test_encoder_cache_is_per_machine_and_overridable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SWARM_ENCODER_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert encoder_cache_dir() == tmp_path / "xdg" / "swarm" / "encoders"
    monkeypatch.setenv("SWARM_ENCODER_CACHE", str(tmp_path / "mine"))
    assert encoder_cache_dir() == tmp_path / "mine"


def test_unknown_encoder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load encoder"):
        load_encoder(str(tmp_path / "no-such-model"))
    with pytest.raises(ConfigError, match="no encoder registered for 'nosuch'"):
        load_encoder("nosuch:64")


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


@pytest.mark.slow
def test_encoders_plug_in_by_entry_point(tmp_path: Path) -> None:
    """A package declares `[swarm.encoders] NAME = module:factory`; a fresh process that never
    imported it builds the encoder by name (so `hash:DIM` works once swarm is installed)."""
    (tmp_path / "my_encoders.py").write_text(
        "from swarm.testing.encoders import HashEncoder\n"
        "def build(name):\n"
        "    return HashEncoder(int(name.split(':')[1]), seed=9)\n"
    )
    dist = tmp_path / "my_encoders-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-encoders\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[swarm.encoders]\nmine = my_encoders:build\n")
    code = (
        "import sys\nfrom swarm.router import load_encoder\n"
        "enc = load_encoder('mine:24')\n"
        "print(enc.dimension, enc.seed, 'my_encoders' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(tmp_path)]))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["24", "9", "True"]
