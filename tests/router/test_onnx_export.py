"""The one-time ONNX export, on a tiny random BERT built here: cached by fingerprint, shared by
processes that export at once, reused without torch, and faithful to sentence-transformers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from swarm.router.encoders import load_encoder, resolve_encoder_folder
from swarm.router.onnx import OnnxEncoder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["my card has not arrived", "book a flight", "", "word " * 300]


def make_tiny_bert(folder: Path, seed: int) -> Path:
    """A 2-layer, 32-wide BERT with the default model's tokenizer, saved as sentence-transformers
    would find it (config, safetensors, tokenizer; mean pooling by default)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(str(folder))
    default = resolve_encoder_folder("all-MiniLM-L6-v2")
    assert default is not None
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy2(default / name, folder / name)
    # A short limit, so the 300-word text is truncated here the same way as there.
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 64}')
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), seed=0)


def export_in_subprocess(folder: Path, cache: Path, variant: str) -> subprocess.Popen[str]:
    code = (
        "import sys\nfrom pathlib import Path\nfrom swarm.router.onnx import export_onnx\n"
        "print(export_onnx(Path(sys.argv[1]), sys.argv[3], cache_dir=Path(sys.argv[2])))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-c", code, str(folder), str(cache), variant],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_two_processes_exporting_at_once_share_one_export(tiny: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    procs = [export_in_subprocess(tiny, cache, "int8") for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1
    exported = sorted(p.name.split("-")[0] for p in cache.iterdir() if p.is_dir())
    assert exported == ["fp32", "int8", "sources"]  # int8 is quantised from the cached fp32
    assert not [p for p in cache.iterdir() if p.is_dir() and p.name.startswith(".")]  # no leftovers
    meta = json.loads((Path(paths.pop()).parent / "meta.json").read_text())
    assert meta["variant"] == "int8" and meta["opset"] == 17 and meta["onnxruntime"]


def test_export_matches_sentence_transformers_and_is_reused(tiny: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    cache = tmp_path / "cache"
    fp32 = OnnxEncoder(tiny, variant="fp32", cache_dir=cache)
    reference = SentenceTransformer(str(tiny), device="cpu").encode(
        TEXTS, normalize_embeddings=True, convert_to_numpy=True
    )
    ours = fp32.encode(TEXTS)
    assert ours.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    # One at a time (one thread, no padding) gives what the padded, length-sorted batch gave.
    singles = np.concatenate([fp32.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(singles, ours, atol=1e-5)

    stamp = fp32.model_path.stat().st_mtime_ns
    again = OnnxEncoder(tiny, variant="fp32", cache_dir=cache)
    assert again.model_path == fp32.model_path and fp32.model_path.stat().st_mtime_ns == stamp
    assert again.fingerprint == fp32.fingerprint
    int8 = OnnxEncoder(tiny, variant="int8", cache_dir=cache)
    assert int8.fingerprint != fp32.fingerprint and int8.name.endswith("@onnx-int8")


def test_new_weights_mean_a_new_fingerprint_and_export(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = OnnxEncoder(make_tiny_bert(tmp_path / "a", seed=1), variant="fp32", cache_dir=cache)
    second = OnnxEncoder(make_tiny_bert(tmp_path / "b", seed=2), variant="fp32", cache_dir=cache)
    assert first.fingerprint != second.fingerprint
    assert first.model_path != second.model_path
    # The same weights in another folder are the same model: one export, one fingerprint.
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    copy = OnnxEncoder(tmp_path / "c", variant="fp32", cache_dir=cache)
    assert copy.fingerprint == first.fingerprint and copy.model_path == first.model_path


def test_load_encoder_serves_bert_folders_on_onnx(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_ENCODER_CACHE", str(tmp_path / "cache"))
    default = load_encoder(str(tiny))
    assert isinstance(default, OnnxEncoder) and default.variant == "int8"
    assert load_encoder(f"{tiny}@onnx-fp32").name == f"{tiny}@onnx-fp32"
    st = load_encoder(f"{tiny}@sentence-transformers")
    assert not isinstance(st, OnnxEncoder) and st.name == f"{tiny}@sentence-transformers"


def test_export_without_torch_is_a_clear_config_error(tiny: Path, tmp_path: Path) -> None:
    """Serving never needs torch, the one-time export does: without it, say so (no traceback)."""
    code = (
        "import sys\nsys.modules['torch'] = None  # as if torch were not installed\n"
        "from swarm.errors import ConfigError\nfrom swarm.router.encoders import load_encoder\n"
        "try:\n    load_encoder(sys.argv[1])\n"
        "except ConfigError as exc:\n    print(exc)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), SWARM_ENCODER_CACHE=str(tmp_path / "empty"))
    result = subprocess.run(
        [sys.executable, "-c", code, str(tiny)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "needs torch and transformers, once per machine" in result.stdout
    assert not [p for p in (tmp_path / "empty").iterdir() if p.is_dir() and p.name != "sources"]
