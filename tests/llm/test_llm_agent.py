"""LLMAgent's loop (tool calls executed, results fed back, step limit, bad calls shown to the
model) and ScriptedLLM, the test double it is tested with."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from llm_fakes import ListSink

from swarm.context import Context
from swarm.errors import AgentError, BackendError, ToolError
from swarm.llm import LLM, ChatRequest, LLMAgent, Message, ReplayBackend
from swarm.testing.llm import ScriptedLLM, call_tool
from swarm.tools import tool

calls: list[dict[str, Any]] = []


@tool
async def forecast(city: str, days: int = 1) -> dict[str, Any]:
    """The weather forecast for a city.

    Args:
        city: the city's name
        days: days ahead, 1 to 7
    """
    calls.append({"city": city, "days": days})
    if city == "Atlantis":
        raise ToolError("no forecasts for places that are not on the map")
    return {"city": city, "sky": "rain"}


class Weather(LLMAgent):
    name = "weather"
    description = "Weather forecasts"
    system = "You answer weather questions."
    tools = [forecast]


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    calls.clear()


def tool_messages(request: ChatRequest) -> list[str]:
    return [str(m.content) for m in request.messages if m.role == "tool"]


async def run(
    agent: LLMAgent, llm: Any, make_ctx: Callable[..., Context], text: str = "Oslo?"
) -> Any:
    ctx = make_ctx(text, llm=LLM(llm).bind(make_ctx(text)) if llm is not None else None)
    return await agent.run(ctx.task, ctx)


async def test_runs_tool_calls_and_feeds_results_back(
    make_ctx: Callable[..., Context], sink: ListSink
) -> None:
    llm = ScriptedLLM([call_tool("forecast", city="Oslo", days=2), "Rain in Oslo."])
    assert await run(Weather(), llm, make_ctx) == "Rain in Oslo."
    assert calls == [{"city": "Oslo", "days": 2}]
    first, second = llm.requests
    assert [m.role for m in first.messages] == ["system", "user"]
    assert first.tools is not None and first.tools[0]["function"]["name"] == "forecast"
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "tool"]
    assistant, result = second.messages[2], second.messages[3]
    assert assistant.tool_calls is not None and assistant.tool_calls[0].function.name == "forecast"
    assert result.tool_call_id == assistant.tool_calls[0].id
    assert json.loads(str(result.content)) == {"city": "Oslo", "sky": "rain"}
    # The tool call and both model calls are in the trace.
    assert [s.kind for s in sink.spans] == ["llm", "tool", "llm"]
    assert sink.of("tool")[0].attributes["arguments"] == {"city": "Oslo", "days": 2}


@pytest.mark.parametrize(
    ("bad_call", "expected"),
    [
        (call_tool("teleport", to="Mars"), "no tool named 'teleport'; available tools: ['fore"),
        (call_tool("forecast", '{"city": "Oslo"'), "not valid JSON"),
        (call_tool("forecast", '["Oslo"]'), "must be a JSON object"),
        (call_tool("forecast", days=2), "bad arguments for tool 'forecast': city: Field required"),
        (call_tool("forecast", city="Oslo", days="soon"), "days: Input should be a valid integer"),
        (call_tool("forecast", city="Oslo", hack=1), "hack: Extra inputs are not permitted"),
        (call_tool("forecast", city="Atlantis"), "not on the map"),
    ],
)
async def test_a_bad_tool_call_is_shown_to_the_model_not_a_crash(
    bad_call: dict[str, Any], expected: str, make_ctx: Callable[..., Context]
) -> None:
    llm = ScriptedLLM([bad_call, "Sorry, I could not check."])
    assert await run(Weather(), llm, make_ctx) == "Sorry, I could not check."
    (message,) = tool_messages(llm.requests[1])
    assert message.startswith("error: ") and expected in message


async def test_a_refused_call_is_an_error_span(
    make_ctx: Callable[..., Context], sink: ListSink
) -> None:
    llm = ScriptedLLM([call_tool("forecast", days="x"), "ok"])
    await run(Weather(), llm, make_ctx)
    (span,) = sink.of("tool")
    assert span.status == "error" and "ToolError" in (span.error or "")


async def test_step_limit(make_ctx: Callable[..., Context]) -> None:
    class Looping(Weather):
        max_steps = 3

    llm = ScriptedLLM(lambda request: call_tool("forecast", city="Oslo"))
    with pytest.raises(AgentError, match="max_steps=3"):
        await run(Looping(), llm, make_ctx)
    assert llm.calls == 3 and len(calls) == 3


async def test_tool_choice_applies_to_the_first_step_only(make_ctx: Callable[..., Context]) -> None:
    class Forced(Weather):
        tool_choice = "forecast"

    llm = ScriptedLLM([call_tool("forecast", city="Oslo"), "done"])
    await run(Forced(), llm, make_ctx)
    assert llm.requests[0].tool_choice == {"type": "function", "function": {"name": "forecast"}}
    assert llm.requests[1].tool_choice is None


async def test_missing_call_ids_are_filled_so_results_match(
    make_ctx: Callable[..., Context],
) -> None:
    no_id = call_tool("forecast", city="Oslo")
    no_id["tool_calls"][0]["id"] = ""
    llm = ScriptedLLM([no_id, "done"])
    await run(Weather(), llm, make_ctx)
    messages = llm.requests[1].messages
    assert messages[2].tool_calls is not None
    assert messages[2].tool_calls[0].id == messages[3].tool_call_id == "call_0_0"


async def test_without_an_llm_the_error_says_how_to_give_one(
    make_ctx: Callable[..., Context],
) -> None:
    with pytest.raises(AgentError, match=r"has no LLM: give the swarm one"):
        await run(Weather(), None, make_ctx)


async def test_agent_level_llm_wins_over_the_swarms(make_ctx: Callable[..., Context]) -> None:
    class Own(Weather):
        llm = ScriptedLLM(["mine"])

    ctx = make_ctx("x", llm=LLM(ScriptedLLM(["swarm's"])))
    assert await Own().run(ctx.task, ctx) == "mine"


async def test_backend_failure_propagates(make_ctx: Callable[..., Context]) -> None:
    llm = ScriptedLLM([BackendError("endpoint down")])
    with pytest.raises(BackendError, match="endpoint down"):
        await run(Weather(), llm, make_ctx)


async def test_in_a_swarm_recorded_then_replayed_offline() -> None:
    from swarm import Swarm, TraceStore
    from swarm.testing import FakeRouter

    store = TraceStore("sqlite://")
    live = ScriptedLLM([call_tool("forecast", city="Oslo"), "Rain in Oslo."])
    async with Swarm([Weather], router=FakeRouter(default="weather"), db=store, llm=live) as s:
        first = await s.run("Will it rain in Oslo?")
        run_id = s.run_id
    await store.flush()
    spans = store.spans(kind="llm", run_id=run_id)
    assert len(spans) == 2 and all(s["attributes"]["request_hash"] for s in spans)

    replay = ReplayBackend.from_spans(spans)
    async with Swarm([Weather], router=FakeRouter(default="weather"), db=None, llm=replay) as s:
        again = await s.run("Will it rain in Oslo?")
    assert first.output == again.output == "Rain in Oslo."
    async with Swarm([Weather], router=FakeRouter(default="weather"), db=None, llm=replay) as s:
        other = await s.run("Will it snow in Bergen?")
    assert not other.ok and "no recorded LLM response" in (other.error or "")
    store.close()


# -- ScriptedLLM ---------------------------------------------------------------------------------


async def test_scripted_list_in_order_then_a_clear_error() -> None:
    llm = LLM(ScriptedLLM(["a", Message.assistant("b")]))
    assert [(await llm.chat(["x"])).content for _ in range(2)] == ["a", "b"]
    with pytest.raises(BackendError, match="has 2 scripted replies and got request 3"):
        await llm.chat(["third"])


async def test_scripted_function_sync_and_async() -> None:
    def shout(request: ChatRequest) -> str:
        return str(request.messages[-1].content).upper()

    async def slow(request: ChatRequest) -> str:
        await asyncio.sleep(0)
        return f"{len(request.messages)} messages"

    assert (await LLM(ScriptedLLM(shout)).chat(["hey"])).content == "HEY"
    assert (await LLM(ScriptedLLM(slow)).chat(["a", "b"])).content == "2 messages"


async def test_scripted_reply_shapes() -> None:
    raw = {"id": "r1", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
           "content": "raw"}, "finish_reason": "length"}]}
    llm = LLM(ScriptedLLM([raw, call_tool("forecast", city="Oslo")]))
    first = await llm.chat(["x"])
    assert first.content == "raw" and first.finish_reason == "length"
    second = await llm.chat(["x"])
    assert second.finish_reason == "tool_calls"
    assert forecast.validate(second.tool_calls[0].function.arguments)["city"] == "Oslo"
    assert second.usage is not None and second.usage.prompt_tokens == 1


async def test_scripted_stream_comes_in_several_chunks() -> None:
    llm = LLM(ScriptedLLM(["one two three"]))
    async with llm.stream(["x"]) as stream:
        deltas = [c.delta async for c in stream]
    assert deltas == ["one", " two", " three", ""]
    assert stream.response is not None and stream.response.content == "one two three"
