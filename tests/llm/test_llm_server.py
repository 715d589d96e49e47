"""Against a real OpenAI-compatible server (llama.cpp with SmolLM2-135M on 127.0.0.1).

The model is far too small to answer well, so these check the protocol and the shapes: status,
SSE framing, schema-valid JSON, tool-call structure, retries, timeouts and offline replay.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from llm_fakes import ListSink, ServerProcess, free_port
from pydantic import BaseModel

from swarm.context import Context
from swarm.errors import BackendError, LLMStatusError
from swarm.llm import LLM, EndpointConfig, HTTPBackend, LLMAgent, ReplayBackend, json_format
from swarm.testing.llm import ScriptedLLM
from swarm.tools import tool

pytestmark = pytest.mark.slow

# Small answers keep each call well under a second on an idle core; generous timeouts keep a
# loaded CI machine from failing them.
SHORT = {"max_tokens": 12, "temperature": 0.0, "seed": 1}


def client(url: str, **config: Any) -> LLM:
    options: dict[str, Any] = {"base_url": url, "model": "smollm2", "timeout": 120, **config}
    return LLM(HTTPBackend(EndpointConfig(**options)))


@tool
def forecast(city: str, days: int = 1) -> str:
    """The weather forecast for a city."""
    return f"rain in {city}"


async def test_chat_shape(llm_server: ServerProcess) -> None:
    async with client(llm_server.url) as llm:
        reply = await llm.chat([{"role": "system", "content": "Be brief."}, "Say hello."], **SHORT)
    assert isinstance(reply.content, str) and reply.content
    assert reply.finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0 and 0 < reply.usage.completion_tokens <= 12
    assert reply.raw["object"] == "chat.completion"


async def test_stream_over_sse(llm_server: ServerProcess) -> None:
    async with client(llm_server.url) as llm, llm.stream(["Count to five."], **SHORT) as stream:
        chunks = [c async for c in stream]
    assert len(chunks) >= 3  # a role chunk, text, a finish chunk
    assert all(c.model_dump()["id"] == chunks[0].id for c in chunks)
    assert chunks[-1].finish_reason in ("stop", "length")
    assert stream.response is not None
    assert stream.response.content == "".join(c.delta for c in chunks) != ""


class Person(BaseModel):
    name: str
    age: int


async def test_json_output_matches_the_schema(llm_server: ServerProcess) -> None:
    async with client(llm_server.url) as llm:
        reply = await llm.chat(
            ["Describe a person as JSON."],
            response_format=json_format(Person, style="llama.cpp"),
            max_tokens=48,
            temperature=0.0,
        )
    person = reply.parse(Person)  # BackendError, saying why, if it does not fit
    assert isinstance(person.name, str) and isinstance(person.age, int)


async def test_named_tool_choice_gives_a_valid_tool_call(llm_server: ServerProcess) -> None:
    async with client(llm_server.url) as llm:
        reply = await llm.chat(
            ["What is the weather in Oslo?"],
            tools=[forecast],
            tool_choice="forecast",
            max_tokens=48,
            temperature=0.0,
        )
    (call,) = reply.tool_calls
    assert call.type == "function" and call.function.name == "forecast" and call.id
    arguments = forecast.validate(call.function.arguments)  # parses and fits the schema
    assert isinstance(arguments["city"], str)


async def test_llm_agent_end_to_end(
    llm_server: ServerProcess, make_ctx: Callable[..., Context], sink: ListSink
) -> None:
    class Weather(LLMAgent):
        name = "weather"
        system = "You answer weather questions."
        tools = [forecast]
        tool_choice = "forecast"  # first step only: this model never calls tools on "auto"
        max_tokens = 48
        temperature = 0.0
        max_steps = 3

    async with client(llm_server.url) as llm:
        ctx = make_ctx("Will it rain in Oslo?")
        ctx.llm = llm.bind(ctx)
        answer = await Weather().run(ctx.task, ctx)
    assert isinstance(answer, str)
    assert [s.kind for s in sink.spans][:2] == ["llm", "tool"]
    assert sink.of("tool")[0].status == "ok"


async def test_recorded_calls_replay_identically_without_the_server(
    llm_server_factory: Callable[..., ServerProcess],
    make_ctx: Callable[..., Context],
    sink: ListSink,
) -> None:
    server = llm_server_factory()
    async with client(server.url) as llm:
        live = llm.bind(make_ctx())
        chat = await live.chat(["Name a colour."], **SHORT)
        async with live.stream(["Name a fruit."], **SHORT) as stream:
            streamed = [c.model_dump_json() async for c in stream]
    server.stop()

    rows = [
        {"kind": s.kind, "attributes": json.loads(json.dumps(s.attributes))} for s in sink.spans
    ]
    replay = LLM(ReplayBackend.from_spans(rows))
    again = await replay.chat(["Name a colour."], **SHORT)
    assert json.dumps(again.raw, sort_keys=True) == json.dumps(chat.raw, sort_keys=True)
    async with replay.stream(["Name a fruit."], **SHORT) as stream:
        assert [c.model_dump_json() async for c in stream] == streamed


async def test_retries_until_a_stopped_server_is_back(
    llm_server_factory: Callable[..., ServerProcess],
) -> None:
    server = llm_server_factory()
    async with client(server.url, max_retries=30, backoff_base=0.25, backoff_cap=1.0) as llm:
        await llm.chat(["hi"], **SHORT)
        server.stop()
        call = asyncio.create_task(llm.chat(["hi again"], **SHORT))
        await asyncio.sleep(1.0)
        assert not call.done()  # connection refused, backing off
        await asyncio.to_thread(server.start)
        reply = await asyncio.wait_for(call, timeout=120)
    assert reply.content


async def test_nothing_listening(sleeps: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    config = EndpointConfig(base_url=url, max_retries=2, backoff_base=0.01)
    async with LLM(HTTPBackend(config)) as llm:
        with pytest.raises(BackendError, match="after 3 attempts: ConnectError"):
            await llm.chat(["hi"])


async def test_wrong_base_url_is_a_clear_404(llm_server: ServerProcess) -> None:
    async with client(llm_server.url.replace("/v1", "/v9"), max_retries=0) as llm:
        with pytest.raises(LLMStatusError, match="404 for model 'smollm2'") as caught:
            await llm.chat(["hi"], **SHORT)
    assert caught.value.status_code == 404


async def test_a_request_the_server_rejects(llm_server: ServerProcess) -> None:
    # This server answers a body that fails its validation with 500, not 4xx.
    async with client(llm_server.url, max_retries=0) as llm:
        with pytest.raises(LLMStatusError, match="valid integer") as caught:
            await llm.chat(["hi"], n="many", max_tokens=4)
    assert caught.value.status_code in (400, 422, 500)


async def test_timeout_on_a_real_server(llm_server: ServerProcess) -> None:
    # Last in the file: the server finishes the abandoned generation before it serves again.
    async with client(llm_server.url, max_retries=0) as llm:
        started = time.monotonic()
        with pytest.raises(BackendError, match="no answer within 0.05s"):
            await llm.chat(["Write a long story."], max_tokens=64, attempt_timeout=0.05)
    assert time.monotonic() - started < 5


def test_scripted_is_what_unit_tests_use() -> None:
    # A reminder with teeth: the fast tests never need this file's server.
    assert ScriptedLLM(["x"]).name == "scripted"
