"""Tokens and cost from real stored spans: a real Swarm with scripted LLM answers writes a SQLite
file; `usage_report`, `swarm usage` and `swarm traces show` read it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from swarm import Swarm
from swarm.cli import main
from swarm.errors import BackendError, ConfigError
from swarm.llm import LLMAgent
from swarm.llm.types import ChatRequest
from swarm.testing import FakeRouter
from swarm.testing.llm import ScriptedLLM
from swarm.trace import TraceStore
from swarm.usage import PriceTable, usage_report

# What each model's scripted server says it used: (prompt, completion) tokens.
TOKENS = {"big-1": (1000, 200), "small-1": (100, 20)}
PRICES = """
big-1: {input: 10, output: 30}     # per million tokens
"small-*": {input: 1, output: 2}
"""


class Big(LLMAgent):
    name = "big"
    description = "Thinks hard"
    examples = ["think hard"]
    model = "big-1"


class Small(LLMAgent):
    name = "small"
    description = "Answers quickly"
    examples = ["answer quickly"]
    model = "small-1"


class Flaky(LLMAgent):
    name = "flaky"
    description = "Its model is down"
    examples = ["try the flaky one"]
    model = "flaky-1"


def answer(request: ChatRequest) -> Any:
    if request.model not in TOKENS:
        return BackendError(f"{request.model} is down")
    prompt, completion = TOKENS[request.model]
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": request.model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


@pytest.fixture
def runs(store: TraceStore) -> dict[str, Any]:
    """Run 1: big twice in session s1, small once in s2. Run 2: small once, flaky fails once."""
    import asyncio

    async def one_run(jobs: list[tuple[str, str | None]]) -> tuple[str, list[str]]:
        agents = [Big(), Small(), Flaky()]
        async with Swarm(
            agents, router=FakeRouter(default="big"), db=store, llm=ScriptedLLM(answer)
        ) as s:
            ids = [(await s.run(f"job {i}", agent=a, session=sess)).task_id
                   for i, (a, sess) in enumerate(jobs)]
            assert s.run_id is not None
            return s.run_id, ids

    first, first_tasks = asyncio.run(one_run([("big", "s1"), ("big", "s1"), ("small", "s2")]))
    second, _ = asyncio.run(one_run([("small", None), ("flaky", None)]))
    store.flush_sync()
    return {"first": first, "second": second, "first_tasks": first_tasks}


@pytest.fixture
def prices(tmp_path: Path) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(PRICES)
    return path


def test_usage_sums_per_agent_session_model_task_and_run(
    runs: dict[str, Any], store: TraceStore, prices: Path
) -> None:
    report = usage_report(store, run_id=runs["first"], prices=PriceTable.load(prices))
    big, small = report.by_agent["big"], report.by_agent["small"]
    assert (big.calls, big.input_tokens, big.output_tokens) == (2, 2000, 400)
    assert (small.calls, small.input_tokens, small.output_tokens) == (1, 100, 20)
    assert big.cost == pytest.approx(2 * (1000 * 10 + 200 * 30) / 1e6)
    assert small.cost == pytest.approx((100 * 1 + 20 * 2) / 1e6)
    assert report.by_session["s1"].total_tokens == 2400
    assert report.by_session["s2"].total_tokens == 120
    assert set(report.by_model) == {"big-1", "small-1"}
    assert [report.by_task[t].total_tokens for t in runs["first_tasks"]] == [1200, 1200, 120]
    assert report.total.total_tokens == 2520 and report.total.unpriced == 0

    everything = usage_report(store)  # no price table: tokens only
    assert set(everything.by_run) == {runs["first"], runs["second"]}
    assert everything.by_run[runs["second"]].calls == 2
    assert everything.by_agent["flaky"].without_usage == 1
    assert everything.total.cost is None


def test_swarm_usage_json_and_tables(
    runs: dict[str, Any], store: TraceStore, db_url: str, prices: Path
) -> None:
    cli = CliRunner()
    out = cli.invoke(
        main, ["usage", "--db", db_url, "--run", runs["first"], "--prices", str(prices), "--json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["run_id"] == runs["first"]
    assert [(g["key"], g["total_tokens"]) for g in data["by_agent"]] == [
        ("big", 2400), ("small", 120),
    ]
    assert data["total"]["cost"] == pytest.approx(0.032 + 0.00014)

    text = cli.invoke(main, ["usage", "--db", db_url, "--prices", str(prices)], terminal_width=120)
    assert text.exit_code == 0, text.output
    assert "tokens by agent" in text.output and "tokens by run" in text.output
    assert "$0.0320" in text.output  # big, 2 calls
    assert "1 without token counts" in text.output  # the flaky call

    unpriced = cli.invoke(
        main, ["usage", "--db", db_url, "--run", runs["second"]], env={"SWARM_PRICES": '{"x": 1}'}
    )
    assert unpriced.exit_code == 2
    assert "model 'x': expected {input: N, output: N}" in unpriced.output

    missing = cli.invoke(main, ["usage", "--db", db_url, "--run", "nope"])
    assert missing.exit_code == 2 and "no run 'nope'" in missing.output


def test_traces_show_prints_the_tasks_tokens(
    runs: dict[str, Any], db_url: str, prices: Path
) -> None:
    task = runs["first_tasks"][0]
    out = CliRunner().invoke(
        main, ["traces", "--db", db_url, "show", task], env={"SWARM_PRICES": str(prices)}
    )
    assert out.exit_code == 0, out.output
    assert "tokens (with child tasks): 1,000 in · 200 out · 1 LLM call · $0.0160" in out.output
    as_json = CliRunner().invoke(main, ["traces", "--db", db_url, "show", task, "--json"])
    assert json.loads(as_json.output)["usage"]["input_tokens"] == 1000


def test_a_bad_price_table_names_the_file_line_model_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "prices.yaml"
    bad.write_text("big-1: {input: 10, outptu: 30}\n")
    with pytest.raises(ConfigError, match=r"model 'big-1': unknown field 'outptu'"):
        PriceTable.load(bad)
    bad.write_text("big-1: {input: -1, output: 3}\n")
    with pytest.raises(ConfigError, match=r"field 'input' must be a number >= 0"):
        PriceTable.load(bad)
    bad.write_text("big-1: {input: 1\nsmall: [\n")
    with pytest.raises(ConfigError, match=r"prices.yaml:\d+: not valid YAML"):
        PriceTable.load(bad)
    table = PriceTable.parse({"gpt-4o": {"input": 5, "output": 15}, "gpt-4o*": {"input": 1,
                                                                               "output": 1}})
    assert table.price("gpt-4o") is not None and table.price("gpt-4o").input == 5
    assert table.price("gpt-4o-mini").input == 1  # type: ignore[union-attr]
    assert table.price("llama") is None
