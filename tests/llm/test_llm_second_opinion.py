"""An LLM only when unsure, against the real llama.cpp server (SmolLM2-135M): the question is
well-formed for the server, its answer is held to the offered names by the JSON schema, and both
opinions land on the decision. The model is tiny, so which agent it picks is not checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from llm_fakes import ServerProcess

from swarm.cli.router import router as cli_router
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


def test_router_eval_llm_reports_how_often_it_asked_and_changed(
    llm_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = TrainingData()
    data.add_pairs([("block my card", "cards"), ("my card never came", "cards")], "cards")
    data.add_pairs([("book a flight", "travel"), ("find me a hotel", "travel")], "travel")
    router, _ = train_router(
        data, TrainConfig(head=HeadConfig(members=2, max_epochs=30)), encoder=HashEncoder(64),
        cache_dir="",
    )  # fmt: skip
    router.save(tmp_path / "models")
    test = tmp_path / "test.csv"
    test.write_text("text,label\nmy card for the hotel,cards\nbook a flight,travel\n")
    monkeypatch.setenv("SWARM_LLM_BASE_URL", llm_server.url)
    monkeypatch.setenv("SWARM_LLM_MODEL", "smollm2")
    monkeypatch.setenv("SWARM_ROUTER_LLM_STYLE", "llama.cpp")
    monkeypatch.setenv("SWARM_ROUTER_LLM_BELOW", "1.01")  # ask about every routed decision
    args = ["eval", "--model", str(tmp_path / "models"), "--data", str(test), "--llm", "--json"]
    result = CliRunner().invoke(cli_router, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    stats = report["second_opinion"]
    assert stats["decisions"] == 2 and stats["asked"] == 2 and stats["failed"] == 0
    assert 0 <= stats["changed"] <= 2 and report["examples"] == 2
