"""Fixtures for the router's tests: a hash encoder, a small labelled set, a trained router."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm.router import Router, TrainingData
from swarm.router.model import HeadConfig
from swarm.router.train import TrainConfig, train_router
from swarm.testing.encoders import HashEncoder

CARDS = [
    "my card has not arrived",
    "where is my new card",
    "block my card please",
    "my card never came in the post",
    "order a replacement card",
    "the card was stolen, block it",
]
ACCOUNTS = [
    "what is my account balance",
    "show my balance",
    "open a savings account",
    "close my account",
    "how much money is in my account",
    "account statement for last month",
]
TRAVEL = [
    "book a flight to paris",
    "find me a hotel in rome",
    "cancel my flight booking",
    "flight tickets to berlin",
    "hotel room for two nights",
    "change my hotel reservation",
]
OUT_OF_SCOPE = [
    "tell me a joke",
    "what is the weather tomorrow",
    "who won the football game",
    "play some jazz music",
    "recipe for pancakes",
    "how tall is mount everest",
]


HELD_OUT = {
    "cards": [
        "my card still has not arrived",
        "where is my card",
        "please block my card",
        "I need a replacement card",
        "my card was stolen",
        "the new card never came",
        "block the stolen card",
        "order a new card for me",
    ],
    "accounts": [
        "what is the balance of my account",
        "show me my account balance",
        "I want to open a savings account",
        "please close my account",
        "how much money do I have in my account",
        "my account statement please",
        "balance of my savings account",
        "open an account",
    ],
    "travel": [
        "book me a flight to rome",
        "find a hotel in paris",
        "cancel my hotel booking",
        "flight to berlin tomorrow",
        "a hotel room for one night",
        "change my flight reservation",
        "book a hotel in berlin",
        "tickets for a flight to rome",
    ],
    "oos": [
        "tell me a funny joke",
        "what will the weather be like",
        "who won the game last night",
        "play some music",
        "a recipe for pancakes please",
        "how tall is the eiffel tower",
        "sing me a song",
        "what is the capital of peru",
    ],
}
"""Texts none of the training sets above hold: what the promotion gate measures on."""


def small_data(*, with_oos: bool = True) -> TrainingData:
    data = TrainingData()
    data.add_pairs([(t, "cards") for t in CARDS], "cards file")
    data.add_pairs([(t, "accounts") for t in ACCOUNTS], "accounts file")
    data.add_pairs([(t, "travel") for t in TRAVEL], "travel file")
    if with_oos:
        data.add_pairs([(t, "oos") for t in OUT_OF_SCOPE], "oos file")
    return data


FAST_HEAD = HeadConfig(hidden=64, members=3, max_epochs=60, patience=10, batch_size=16)


@pytest.fixture
def make_data():  # type: ignore[no-untyped-def]
    """small_data(with_oos=True): three agents' utterances, and out-of-scope ones."""
    return small_data


@pytest.fixture
def labelled_rows() -> list[tuple[str, str]]:
    return [
        (text, label)
        for label, texts in (
            ("cards", CARDS),
            ("accounts", ACCOUNTS),
            ("travel", TRAVEL),
            ("oos", OUT_OF_SCOPE),
        )
        for text in texts
    ]


@pytest.fixture
def held_out_rows() -> list[tuple[str, str]]:
    """32 labelled texts (8 a label) that no training set in these tests holds."""
    return [(text, label) for label, texts in HELD_OUT.items() for text in texts]


@pytest.fixture
def fast_config() -> TrainConfig:
    return TrainConfig(head=HeadConfig(**FAST_HEAD.to_dict()))


@pytest.fixture
def encoder() -> HashEncoder:
    return HashEncoder(128)


@pytest.fixture
def trained(encoder: HashEncoder, tmp_path: Path) -> Router:
    router, _ = train_router(
        small_data(), TrainConfig(head=FAST_HEAD), encoder=encoder, cache_dir=tmp_path / "cache"
    )
    return router


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def console_text():  # type: ignore[no-untyped-def]
    """Render a rich renderable into a 100-column console and return the text."""
    import io

    from rich.console import Console

    def render(renderable: object) -> str:
        buffer = io.StringIO()
        Console(file=buffer, width=100, color_system=None).print(renderable)
        return buffer.getvalue()

    return render
