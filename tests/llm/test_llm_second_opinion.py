"""An LLM only when unsure, against the real llama.cpp server (SmolLM2-135M): the question is
well-formed for the server, its answer is held to the offered names by the JSON schema, and both
opinions land on the decision. The model is tiny, so which agent it picks is not checked."""

from __future__ import annotations

import pytest
from llm_fakes import ServerProcess

from swarm.llm import LLM, EndpointConfig, HTTPBackend
from swarm.router import TrainingData
from swarm.router.model import HeadConfig
from swarm.router.second_opinion import NONE_CHOICE, SecondOpinionRouter
from swarm.router.train import TrainConfig, train_router
from swarm.testing.encoders import HashEncoder

pytestmark = pytest.mark.slow


def test_unsure_decisions_get_a_schema_valid_second_opinion(llm_server: ServerProcess) -> None:
    data = TrainingData()
    data.add_pairs([("block my card", "cards"), ("my card never came", "cards")], "cards")
    data.add_pairs([("book a flight", "travel"), ("find me a hotel", "travel")], "travel")
    data.add_pairs([("tell me a joke", "oos"), ("play some music", "oos")], "oos")
    router, _ = train_router(
        data, TrainConfig(head=HeadConfig(members=2, max_epochs=30)), encoder=HashEncoder(64),
        cache_dir="",
    )  # fmt: skip
    llm = LLM(HTTPBackend(EndpointConfig(base_url=llm_server.url, model="smollm2", timeout=120)))
    # Asked about every routed decision (below > 1) and every rejection (floor 0).
    asking = SecondOpinionRouter(router, llm, below=1.01, floor=0.0, style="llama.cpp", timeout=300)
    texts = ["my card for the hotel", "a flight for my card", "what is the weather"]
    try:
        decisions = asking.route(texts)
    finally:
        asking.close()
    assert asking.stats.asked == len(texts) and asking.stats.failed == 0
    for d in decisions:
        opinion = d.second_opinion
        assert opinion is not None and "error" not in opinion, opinion
        assert opinion["llm"] in [*opinion["choices"], NONE_CHOICE]
        assert opinion["model"] == "smollm2" and opinion["latency_ms"] > 0
        expected = None if opinion["llm"] == NONE_CHOICE else opinion["llm"]
        assert d.agent == expected
        assert opinion["changed"] == (
            (d.agent, d.status) != (opinion["router"]["agent"], opinion["router"]["status"])
        )
