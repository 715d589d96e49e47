"""The HTTP backend against a scripted server on 127.0.0.1: requests, retries, errors, streams."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import httpx
import pytest
from llm_fakes import FakeOpenAI, Reply, Sleeps, chunk, completion
from pydantic import BaseModel

from swarm.errors import BackendError, ConfigError, LLMStatusError
from swarm.llm import LLM, EndpointConfig, HTTPBackend, json_format
from swarm.tools import tool

KEY = "sk-test-0123456789abcdef"


def make_llm(server: FakeOpenAI, sleeps: Sleeps | None = None, **config: Any) -> LLM:
    options: dict[str, Any] = {"base_url": server.url, "model": "m", **config}
    backend = HTTPBackend(
        EndpointConfig(**options), sleep=sleeps or Sleeps(), rng=random.Random(7)
    )
    return LLM(backend)


@tool
def weather(city: str, days: int = 1) -> str:
    """The forecast."""
    return "rain"


async def test_chat_sends_openai_body_and_parses_the_answer(server: FakeOpenAI) -> None:
    server.json(completion("Hi there", model="m"))
    async with make_llm(server, api_key=KEY) as llm:
        reply = await llm.chat(
            [{"role": "system", "content": "be brief"}, "hello"],
            tools=[weather],
            tool_choice="weather",
            response_format={"type": "json_object"},
            max_tokens=5,
        )
    assert reply.content == "Hi there"
    assert reply.usage is not None and reply.usage.total_tokens == 7
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    body = sent["body"]
    assert body["model"] == "m" and body["max_tokens"] == 5
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
    ]
    assert body["tools"][0]["function"]["name"] == "weather"
    assert body["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert body["response_format"] == {"type": "json_object"}
    assert "stream" not in body and "temperature" not in body  # unset: server defaults


async def test_key_is_read_from_the_named_env_var(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    async with make_llm(server, api_key_env="MY_LLM_KEY") as llm:
        await llm.chat(["x"])
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"


async def test_unknown_fields_survive_in_raw(server: FakeOpenAI) -> None:
    server.json(completion("x", system_fingerprint="fp_1", timings={"predicted_ms": 3.5}))
    async with make_llm(server) as llm:
        reply = await llm.chat(["x"])
    assert reply.raw["timings"] == {"predicted_ms": 3.5}
    assert reply.raw["system_fingerprint"] == "fp_1"


# -- retries -------------------------------------------------------------------------------------


async def test_429_waits_exactly_retry_after_then_succeeds(
    server: FakeOpenAI, sleeps: Sleeps
) -> None:
    server.json({"error": {"message": "slow down"}}, 429, **{"Retry-After": "7"})
    server.json(completion("ok"))
    async with make_llm(server, sleeps) as llm:
        assert (await llm.chat(["x"])).content == "ok"
    assert sleeps.delays == [7.0]
    assert len(server.requests) == 2


async def test_retry_after_as_http_date(server: FakeOpenAI, sleeps: Sleeps) -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    server.json({}, 503, **{"Retry-After": when})
    server.json(completion("ok"))
    async with make_llm(server, sleeps) as llm:
        await llm.chat(["x"])
    assert len(sleeps.delays) == 1 and 25 <= sleeps.delays[0] <= 31


async def test_too_long_retry_after_fails_at_once(server: FakeOpenAI, sleeps: Sleeps) -> None:
    server.json({"error": {"message": "quota"}}, 429, **{"Retry-After": "3600"})
    async with make_llm(server, sleeps, max_retry_after=60) as llm:
        with pytest.raises(LLMStatusError, match="Retry-After too long") as caught:
            await llm.chat(["x"])
    assert caught.value.status_code == 429
    assert sleeps.delays == [] and len(server.requests) == 1


async def test_5xx_backs_off_exponentially_with_jitter(server: FakeOpenAI, sleeps: Sleeps) -> None:
    for status in (500, 502, 503):
        server.json({"error": "busy"}, status)
    server.json(completion("finally"))
    async with make_llm(server, sleeps, backoff_base=1.0, backoff_cap=100, max_retries=3) as llm:
        assert (await llm.chat(["x"])).content == "finally"
    # Step n is base * 2**n; equal jitter keeps each delay in [step/2, step].
    assert len(sleeps.delays) == 3
    for n, delay in enumerate(sleeps.delays):
        assert 2**n / 2 <= delay <= 2**n
    assert len(set(sleeps.delays)) == 3


async def test_backoff_is_capped(server: FakeOpenAI, sleeps: Sleeps) -> None:
    for _ in range(4):
        server.json({}, 500)
    server.json(completion())
    async with make_llm(server, sleeps, backoff_base=10, backoff_cap=3, max_retries=4) as llm:
        await llm.chat(["x"])
    assert all(1.5 <= d <= 3 for d in sleeps.delays)


async def test_persistent_5xx_gives_up_with_status_error(
    server: FakeOpenAI, sleeps: Sleeps
) -> None:
    for _ in range(3):
        server.json({"error": {"message": "model crashed"}}, 500)
    async with make_llm(server, sleeps, max_retries=2) as llm:
        with pytest.raises(LLMStatusError) as caught:
            await llm.chat(["x"])
    assert caught.value.status_code == 500
    assert "model crashed" in str(caught.value) and "3 attempts" in str(caught.value)
    assert len(server.requests) == 3 and len(sleeps.delays) == 2


async def test_dropped_connection_is_retried(server: FakeOpenAI, sleeps: Sleeps) -> None:
    server.add(Reply(drop=True))
    server.json(completion("second"))
    async with make_llm(server, sleeps) as llm:
        assert (await llm.chat(["x"])).content == "second"
    assert len(sleeps.delays) == 1


async def test_nothing_listening_fails_after_retries(sleeps: Sleeps) -> None:
    with socket_port() as port:
        pass  # closed again: nothing listens there now
    config = EndpointConfig(base_url=f"http://127.0.0.1:{port}/v1", max_retries=2)
    async with LLM(HTTPBackend(config, sleep=sleeps)) as llm:
        with pytest.raises(BackendError, match="ConnectError") as caught:
            await llm.chat(["x"])
    assert "after 3 attempts" in str(caught.value)
    assert len(sleeps.delays) == 2


async def test_attempt_timeout_bounds_each_try(server: FakeOpenAI, sleeps: Sleeps) -> None:
    server.add(Reply(delay=5, body=b"{}"))
    server.add(Reply(delay=5, body=b"{}"))
    started = time.monotonic()
    async with make_llm(server, sleeps, max_retries=1) as llm:
        with pytest.raises(BackendError, match=r"no answer within 0\.2s"):
            await llm.chat(["x"], attempt_timeout=0.2)
    assert time.monotonic() - started < 2
    assert len(server.requests) == 2


async def test_concurrency_cap_per_endpoint(server: FakeOpenAI) -> None:
    for _ in range(6):
        server.add(Reply(delay=0.05, body=b'{"choices": [{"message": {"role": "assistant"}}]}'))
    async with make_llm(server, max_concurrency=2) as llm:
        await asyncio.gather(*(llm.chat(["x"]) for _ in range(6)))
    assert server.peak == 2


# -- errors that are not retried -----------------------------------------------------------------


async def test_400_is_not_retried_and_says_what_the_server_said(
    server: FakeOpenAI, sleeps: Sleeps
) -> None:
    server.json({"error": {"message": "messages: field required"}}, 400)
    async with make_llm(server, sleeps) as llm:
        with pytest.raises(LLMStatusError, match="messages: field required") as caught:
            await llm.chat(["x"])
    assert caught.value.status_code == 400
    assert "'m'" in str(caught.value)
    assert len(server.requests) == 1 and sleeps.delays == []


async def test_404_names_the_model(server: FakeOpenAI) -> None:
    server.json({"error": {"message": "The model `gpt-9` does not exist"}}, 404)
    async with make_llm(server) as llm:
        with pytest.raises(LLMStatusError, match=r"404 for model 'gpt-9'.*model name or base_url"):
            await llm.chat(["x"], model="gpt-9")


async def test_401_never_shows_the_key_even_if_echoed(server: FakeOpenAI) -> None:
    server.json({"error": {"message": f"Incorrect API key provided: {KEY}"}}, 401)
    async with make_llm(server, api_key=KEY) as llm:
        with pytest.raises(LLMStatusError, match="refused the API key") as caught:
            await llm.chat(["x"])
    assert KEY not in str(caught.value) and KEY not in caught.value.body


async def test_body_that_is_not_json(server: FakeOpenAI, sleeps: Sleeps) -> None:
    server.raw(b"<html>502 from a proxy</html>", 200)
    async with make_llm(server, sleeps) as llm:
        with pytest.raises(BackendError, match="not valid JSON.*text/html.*<html>"):
            await llm.chat(["x"])
    assert len(server.requests) == 1


async def test_json_that_is_not_a_completion(server: FakeOpenAI) -> None:
    server.json({"object": "list", "data": []})
    async with make_llm(server) as llm:
        with pytest.raises(BackendError, match="without a `choices` list"):
            await llm.chat(["x"])


async def test_retry_logs_never_contain_the_key(
    server: FakeOpenAI, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    server.json({}, 500)
    server.json(completion())
    caplog.set_level(logging.DEBUG)
    async with make_llm(server, sleeps, api_key=KEY) as llm:
        await llm.chat(["x"])
    assert "retry 1 of 3" in caplog.text
    assert KEY not in caplog.text


# -- streaming -----------------------------------------------------------------------------------


async def test_stream_yields_chunks_and_assembles_the_response(server: FakeOpenAI) -> None:
    server.sse([
        chunk("Hel", role="assistant"),
        chunk("lo"),
        chunk(finish="stop"),
        {**chunk(), "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2,
                                              "total_tokens": 5}},
    ])
    async with make_llm(server) as llm, llm.stream(["x"]) as stream:
        deltas = [c.delta async for c in stream]
    assert deltas == ["Hel", "lo", "", ""]
    assert stream.response is not None
    assert stream.response.content == "Hello"
    assert stream.response.finish_reason == "stop"
    assert stream.response.usage is not None and stream.response.usage.total_tokens == 5
    assert server.requests[0]["body"]["stream"] is True
    assert server.requests[0]["headers"]["accept"] == "text/event-stream"


async def test_stream_merges_tool_call_deltas(server: FakeOpenAI) -> None:
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "weather", "arguments": '{"ci'}}
    more = {"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}
    server.sse([chunk(tool_calls=[call]), chunk(tool_calls=[more]), chunk(finish="tool_calls")])
    async with make_llm(server) as llm:
        response = await llm.stream(["x"]).collect()
    (made,) = response.tool_calls
    assert made.id == "call_1" and made.function.name == "weather"
    assert weather.validate(made.function.arguments) == {"city": "Oslo", "days": 1}


async def test_stream_cut_off_midway_is_an_error(server: FakeOpenAI) -> None:
    server.sse([chunk("one"), chunk("two")], cut=True)
    got: list[str] = []
    async with make_llm(server) as llm:
        with pytest.raises(BackendError, match="cut off after 2 chunks"):
            async with llm.stream(["x"]) as stream:
                async for c in stream:
                    got.append(c.delta)
    assert got == ["one", "two"]


async def test_stream_ending_without_done_or_finish_is_an_error(server: FakeOpenAI) -> None:
    server.sse([chunk("one")], done=False)
    async with make_llm(server) as llm:
        with pytest.raises(BackendError, match=r"cut off after 1 chunks.*without \[DONE\]"):
            await llm.stream(["x"]).collect()


async def test_stream_event_that_is_not_json(server: FakeOpenAI) -> None:
    server.sse([chunk("one"), "{not json"])
    async with make_llm(server) as llm:
        with pytest.raises(BackendError, match="not valid JSON after 1 chunks"):
            await llm.stream(["x"]).collect()


async def test_stream_error_event(server: FakeOpenAI) -> None:
    server.sse([{"error": {"message": "context length exceeded"}}])
    async with make_llm(server) as llm:
        with pytest.raises(BackendError, match="context length exceeded"):
            await llm.stream(["x"]).collect()


async def test_stream_retries_before_it_starts(server: FakeOpenAI, sleeps: Sleeps) -> None:
    server.json({"error": "busy"}, 429, **{"Retry-After": "1"})
    server.sse([chunk("ok"), chunk(finish="stop")])
    async with make_llm(server, sleeps) as llm:
        assert (await llm.stream(["x"]).collect()).content == "ok"
    assert sleeps.delays == [1.0]


async def test_stream_stall_is_an_error(server: FakeOpenAI) -> None:
    server.sse([chunk("one"), chunk("two")], gap=2)
    async with make_llm(server, max_retries=0) as llm:
        with pytest.raises(BackendError, match="stalled: no data for 0.3s after 1 chunks"):
            await llm.stream(["x"], attempt_timeout=0.3).collect()


async def test_breaking_out_of_a_stream_closes_the_connection(server: FakeOpenAI) -> None:
    server.sse([chunk(str(i)) for i in range(50)], gap=0.02)
    async with make_llm(server) as llm:
        async with llm.stream(["x"]) as stream:
            async for _ in stream:
                break
        for _ in range(100):
            if server.disconnects:
                break
            await asyncio.sleep(0.02)
    assert server.disconnects == 1
    assert stream.response is None


async def test_stream_from_a_server_that_answers_whole(server: FakeOpenAI) -> None:
    server.json(completion("all at once"))
    async with make_llm(server) as llm:
        response = await llm.stream(["x"]).collect()
    assert response.content == "all at once"


# -- config --------------------------------------------------------------------------------------


def test_config_from_env() -> None:
    env = {
        "SWARM_LLM_BASE_URL": "http://127.0.0.1:8080/v1/",
        "SWARM_LLM_MODEL": "smol",
        "SWARM_LLM_TIMEOUT": "12.5",
        "OPENAI_API_KEY": KEY,
    }
    config = EndpointConfig.from_env(env)
    assert config.base_url.get_secret_value() == "http://127.0.0.1:8080/v1"
    assert config.model == "smol" and config.timeout == 12.5
    assert config.key() == KEY
    assert KEY not in repr(config) and KEY not in str(config.model_dump())


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="SWARM_LLM_BASE_URL"):
        EndpointConfig.from_env({})
    with pytest.raises(ConfigError, match="timeout"):
        EndpointConfig.from_env({"SWARM_LLM_BASE_URL": "http://x/v1", "SWARM_LLM_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="base_url.*http"):
        EndpointConfig.from_mapping({"base_url": "ftp://x"})
    with pytest.raises(ConfigError, match="max_retries"):
        EndpointConfig.from_mapping({"base_url": "http://x", "max_retries": -1})


def test_bad_url_error_does_not_echo_credentials() -> None:
    with pytest.raises(ConfigError) as caught:
        EndpointConfig.from_mapping({"base_url": f"gopher://user:{KEY}@host/?key={KEY}"})
    assert KEY not in str(caught.value)


def test_endpoint_name_hides_credentials_in_the_url() -> None:
    config = EndpointConfig(base_url=f"https://user:{KEY}@api.example.com/v1?api-key={KEY}")
    backend = HTTPBackend(config)
    assert KEY not in backend.name
    assert backend.name == "https://***@api.example.com/v1?api-key=***"


async def test_mock_transport_edge_case_empty_choices() -> None:
    # An empty `choices` list would make `.content` raise IndexError later; fail at the boundary.
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"choices": []}))
    config = EndpointConfig(base_url="http://llm.invalid/v1")
    async with LLM(HTTPBackend(config, transport=transport)) as llm:
        with pytest.raises(BackendError, match="choices"):
            await llm.chat(["x"])


class socket_port:
    """A port that was free a moment ago (bound, then released on exit)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_a_malformed_request_is_a_config_error() -> None:
    llm = LLM(HTTPBackend(EndpointConfig(base_url="http://127.0.0.1:9/v1")))
    with pytest.raises(ConfigError, match="temperature"):
        llm.request(["x"], temperature="hot")
    with pytest.raises(ConfigError, match="not one item"):
        llm.request("x")
    with pytest.raises(ConfigError, match="role"):
        llm.request([{"role": "wizard", "content": "x"}])


class Person(BaseModel):
    name: str
    age: int


def test_json_format_spellings() -> None:
    openai = json_format(Person)
    assert openai["type"] == "json_schema" and openai["json_schema"]["name"] == "Person"
    assert openai["json_schema"]["schema"]["required"] == ["name", "age"]
    llama = json_format({"type": "object"}, style="llama.cpp")
    assert llama == {"type": "json_object", "schema": {"type": "object"}}


async def test_parse_into_a_model(server: FakeOpenAI) -> None:
    server.json(completion('{"name": "Ada", "age": 36}'))
    server.json(completion('{"name": "Ada", "age": "old"}'))
    async with make_llm(server) as llm:
        good = await llm.chat(["who?"], response_format=json_format(Person))
        assert good.parse(Person) == Person(name="Ada", age=36)
        bad = await llm.chat(["who?"])
    with pytest.raises(BackendError, match="not a valid Person: age: Input should be a valid"):
        bad.parse(Person)
    assert server.requests[0]["body"]["response_format"]["type"] == "json_schema"
