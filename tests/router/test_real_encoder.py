"""The real default encoder (all-MiniLM-L6-v2 run in numpy): same embeddings as
sentence-transformers, and a small router trained on it routes and rejects sensibly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swarm.router import DEFAULT_ENCODER, NativeBertEncoder, Router, TrainingData, load_encoder
from swarm.router.train import TrainConfig, train_router

pytestmark = pytest.mark.slow

TEXTS = [
    "I am still waiting on my card?",
    "How do I top up by bank transfer?",
    "",
    "Ünïcödé and emoji 🚀 survive tokenisation",
    "word " * 300,  # longer than the 256-token limit: truncated the same way
]


@pytest.fixture(scope="module")
def native() -> NativeBertEncoder:
    enc = load_encoder(DEFAULT_ENCODER)
    assert isinstance(enc, NativeBertEncoder)
    return enc


def test_numpy_bert_matches_sentence_transformers(native: NativeBertEncoder) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(native.folder), device="cpu").encode(
        TEXTS, normalize_embeddings=True, convert_to_numpy=True
    )
    ours = native.encode(TEXTS)
    assert ours.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_real_router_routes_and_rejects(native: NativeBertEncoder, tmp_path: Path) -> None:
    data = TrainingData()
    data.add_pairs(
        [
            ("my card has not arrived yet", "cards"),
            ("I need a new debit card", "cards"),
            ("my card was stolen", "cards"),
            ("freeze my credit card", "cards"),
            ("book a flight to Lisbon", "travel"),
            ("I need a hotel in Madrid next week", "travel"),
            ("cancel my train ticket", "travel"),
            ("find cheap flights to Tokyo", "travel"),
            ("what's the capital of Australia", "oos"),
            ("write me a poem about autumn", "oos"),
            ("how do I bake sourdough bread", "oos"),
            ("who sings this song", "oos"),
        ],
        "inline",
    )
    router, _ = train_router(data, TrainConfig(), encoder=native, cache_dir=tmp_path / "cache")
    router = Router.load(router.save(tmp_path / "models"))  # the encoder is found again by name
    decisions = router.route(
        ["my bank card never came in the mail", "reserve a plane ticket to Rome", "tell me a joke"]
    )
    assert [d.agent for d in decisions[:2]] == ["cards", "travel"]
    assert decisions[2].agent is None and decisions[2].status == "out_of_scope"
    assert all(0 < d.latency_ms < 5000 for d in decisions)


def test_finetuned_encoder_ships_inside_the_artifact(
    native: NativeBertEncoder, tmp_path: Path
) -> None:
    from swarm.router.model import HeadConfig

    data = TrainingData()
    data.add_pairs(
        [("my card has not arrived", "cards"), ("block my debit card", "cards")]
        + [("book a flight to Rome", "travel"), ("find me a hotel", "travel")],
        "inline",
    )
    config = TrainConfig(finetune=True, finetune_minutes=0.5, head=HeadConfig(members=2))
    router, report = train_router(data, config, encoder=native)
    assert "finetune" in report.seconds
    folder = router.save(tmp_path / "models")
    assert (folder / "encoder" / "model.safetensors").is_file()
    loaded = Router.load(folder)
    assert loaded.manifest["encoder"]["name"] == "artifact:encoder"
    assert loaded.encoder.fingerprint != native.fingerprint
    np.testing.assert_allclose(
        loaded.encoder.encode(["block my card"]),
        router.encoder.encode(["block my card"]),
        atol=1e-6,
    )
    assert loaded.route(["my card never came"])[0].agent == "cards"
