"""No credential of an endpoint gets out: not through a stream or its error events, a recorded
request, response or chunk, a task's output or error, the config's repr, dumps or validation
errors, an echoed error body, or httpx's log of the URL (issue 17, items 16-18)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llm_fakes import FakeOpenAI, chunk, completion
from pydantic import ValidationError

from swarm import Context, Swarm, Task, agent
from swarm.errors import BackendError, ConfigError, LLMStatusError
from swarm.llm import LLM, EndpointConfig, HTTPBackend
from swarm.llm.redaction import StreamRedactor, redact_text, redact_url, url_secrets
from swarm.testing import FakeRouter
from swarm.trace import TraceStore

KEY = "sk-live-secret-4242424242"
PASSWORD = "pw-7f3c9e1d2b"
QUERY_KEY = "qk-9a8b7c6d5e4f"
BASIC = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
SECRETS = (KEY, PASSWORD, QUERY_KEY, BASIC)


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def everything(store: TraceStore, run_id: str) -> str:
    """All a run left in the store, as `swarm traces --json` would print it."""
    rows = {
        "tasks": store.tasks(run_id=run_id, limit=None),
        "spans": store.spans(run_id=run_id),
    }
    return json.dumps(rows, default=str)


@agent(examples=["stream something"])
async def streamer(task: Task, ctx: Context) -> str:
    """Streams an answer and returns the text it saw."""
    async with ctx.llm.stream([task.text]) as stream:
        async for _ in stream:
            pass
    return stream.text


@agent(examples=["ask something"])
async def asker(task: Task, ctx: Context) -> str:
    """Asks once and returns the answer."""
    return (await ctx.llm.chat([task.text])).content


async def run_one(store: TraceStore, llm: LLM, which: Any, text: str) -> tuple[Any, str]:
    async with Swarm([which], router=FakeRouter(default=which.name), db=store, llm=llm) as s:
        result = await s.run(text)
        run_id = s.run_id
    assert run_id is not None
    return result, everything(store, run_id)


# -- item 16: streams and their errors ------------------------------------------------------------


async def test_a_stream_error_event_quoting_the_key_leaves_no_key(
    server: FakeOpenAI, store: TraceStore
) -> None:
    server.sse([chunk("partial "), {"error": {"message": f"invalid api key {KEY} for this org"}}])
    llm = LLM(HTTPBackend(EndpointConfig(base_url=server.url, api_key=KEY, max_retries=0)))
    result, recorded = await run_one(store, llm, streamer, "stream something")
    await llm.aclose()
    assert result.status.value == "failed"
    assert "invalid api key *** for this org" in (result.error or "")
    assert leaked(result.error or "") == [] and leaked(recorded) == []
    assert "invalid api key ***" in recorded  # the error is kept, only the key is gone


@pytest.mark.parametrize("cut", [1, 5, 12, len(KEY) - 1])
async def test_a_key_split_over_stream_chunks_is_scrubbed(
    server: FakeOpenAI, store: TraceStore, cut: int
) -> None:
    text = f"your key is {KEY}, keep it safe"
    at = text.index(KEY) + cut
    server.sse([chunk(text[:at]), chunk(text[at:]), chunk(finish="stop")])
    llm = LLM(HTTPBackend(EndpointConfig(base_url=server.url, api_key=KEY)))
    result, recorded = await run_one(store, llm, streamer, "stream something")
    await llm.aclose()
    assert result.output == "your key is ***, keep it safe"
    assert leaked(recorded) == []


async def test_a_stream_not_found_error_body_is_scrubbed(server: FakeOpenAI) -> None:
    server.json({"error": {"message": f"no such model for key {KEY}"}}, status=404)
    config = EndpointConfig(base_url=server.url, api_key=KEY)
    async with LLM(HTTPBackend(config)) as llm:
        with pytest.raises(LLMStatusError) as caught:
            await llm.stream(["x"]).collect()
    assert leaked(str(caught.value)) == [] and leaked(caught.value.body) == []


async def test_a_stream_event_that_is_not_json_is_scrubbed(server: FakeOpenAI) -> None:
    server.sse([f"not json {KEY}"])
    async with LLM(HTTPBackend(EndpointConfig(base_url=server.url, api_key=KEY))) as llm:
        with pytest.raises(BackendError, match=r"not valid JSON.*\*\*\*") as caught:
            await llm.stream(["x"]).collect()
    assert leaked(str(caught.value)) == []


# -- item 17: answers that echo the key -----------------------------------------------------------


async def test_an_answer_that_echoes_the_key_is_stored_and_returned_without_it(
    server: FakeOpenAI, store: TraceStore
) -> None:
    server.json(completion(f"Sure! The key you use is {KEY}.", message={"name": KEY}))
    llm = LLM(HTTPBackend(EndpointConfig(base_url=server.url, api_key=KEY)))
    result, recorded = await run_one(store, llm, asker, "repeat my key")
    await llm.aclose()
    assert result.output == "Sure! The key you use is ***."
    assert leaked(recorded) == []
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"


# -- item 18: credentials in the URL and headers --------------------------------------------------


def url_config(server: FakeOpenAI, **options: Any) -> EndpointConfig:
    base = server.url.replace("http://", f"http://alice:{PASSWORD}@")
    return EndpointConfig(base_url=f"{base}?key={QUERY_KEY}&api-version=2024", **options)


async def test_url_credentials_are_sent_as_auth_and_never_logged(
    server: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    server.json(completion("hi"))
    caplog.set_level(logging.DEBUG)
    async with LLM(HTTPBackend(url_config(server))) as llm:
        assert (await llm.chat(["x"])).content == "hi"
    (request,) = server.requests
    assert request["headers"]["authorization"] == f"Basic {BASIC}"
    assert request["path"] == f"/v1/chat/completions?key={QUERY_KEY}&api-version=2024"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request: POST" in logged  # httpx did log the request ...
    assert leaked(logged) == []  # ... without the password or the query key


@pytest.mark.parametrize("echo", [PASSWORD, BASIC, QUERY_KEY, f"alice:{PASSWORD}"])
async def test_an_error_body_echoing_a_url_credential_is_scrubbed(
    server: FakeOpenAI, echo: str
) -> None:
    server.json({"error": {"message": f"bad credentials: {echo}"}}, status=401)
    async with LLM(HTTPBackend(url_config(server))) as llm:
        with pytest.raises(LLMStatusError, match="refused the API key") as caught:
            await llm.chat(["x"])
    assert echo not in str(caught.value) and echo not in caught.value.body


def test_the_config_masks_every_credential() -> None:
    base = f"https://alice:{PASSWORD}@api.example.com/v1?key={QUERY_KEY}"
    config = EndpointConfig(base_url=base, api_key=KEY, headers={"api-key": KEY})
    shown = [repr(config), str(config), str(config.model_dump()), config.model_dump_json()]
    for text in shown:
        assert leaked(text) == [], text
    assert config.safe_url == "https://***@api.example.com/v1?key=***"
    assert set(SECRETS) <= set(config.secrets())
    # The secret is still there for the client.
    assert config.base_url.get_secret_value() == base


@pytest.mark.parametrize(
    "options",
    [
        {"base_url": f"ftp://alice:{PASSWORD}@h/?key={QUERY_KEY}", "api_key": KEY},
        {"base_url": f"https://alice:{PASSWORD}@h/v1", "api_key": KEY, "timeout": -1},
        {"base_url": "https://h/v1", "api_key": KEY, "unknown": KEY},
        {"base_url": f"https://alice:{PASSWORD}@h:99999/v1"},
        {"base_url": "https://h/v1", "headers": {"api-key": 5}, "max_retries": KEY},
    ],
)
def test_a_validation_error_does_not_print_a_secret(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        EndpointConfig(**options)
    assert leaked(str(caught.value)) == [] and leaked(repr(caught.value.errors())) == []
    with pytest.raises(ConfigError) as wrapped:
        EndpointConfig.from_mapping(options)
    assert leaked(str(wrapped.value)) == []


async def test_a_credential_header_is_masked_and_scrubbed(server: FakeOpenAI) -> None:
    server.json({"error": {"message": f"header {KEY} refused"}}, status=403)
    config = EndpointConfig(base_url=server.url, headers={"api-key": KEY, "X-Title": "app"})
    assert KEY not in repr(config)
    async with LLM(HTTPBackend(config)) as llm:
        with pytest.raises(LLMStatusError) as caught:
            await llm.chat(["x"])
    assert server.requests[0]["headers"]["api-key"] == KEY
    assert server.requests[0]["headers"]["x-title"] == "app"
    assert KEY not in str(caught.value)


# -- the one redaction function -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@h.example/v1?key=k&x", "https://***@h.example/v1?key=***&***"),
        ("http://token@h:8080/", "http://***@h:8080/"),
        ("http://[::1]:9/v1?a=b", "http://[::1]:9/v1?a=***"),
        ("http://h:notaport/", "<unparseable url>"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_url_secrets_cover_encoded_and_basic_forms() -> None:
    found = url_secrets("https://al%40ice:p%40ss-word@h/v1?access_token=t0k3n%2B&api-version=1")
    assert {"p%40ss-word", "p@ss-word", "al@ice:p@ss-word", "t0k3n+", "t0k3n%2B"} <= set(found)
    assert base64.b64encode(b"al@ice:p@ss-word").decode() in found
    assert "al@ice" not in found and "1" not in found  # a user name beside a password is a name
    assert "tok-123456" in url_secrets("https://tok-123456@h/")  # alone, it is the token


def test_the_stream_redactor_catches_a_secret_cut_anywhere() -> None:
    text = f"a {KEY} b {KEY}{KEY} c"
    for size in range(1, len(text) + 1):
        redactor = StreamRedactor([KEY])
        out = "".join(redactor.feed(0, text[i : i + size]) for i in range(0, len(text), size))
        out += redactor.flush(0)
        assert out == redact_text(text, [KEY]) == "a *** b ****** c", size


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.lists(st.text("abk-1", min_size=4, max_size=9), min_size=1, max_size=3),
    pieces=st.lists(st.sampled_from(["a", "b", "k", "-", "1", " ", "0", "ab", "k-1"]), max_size=40),
    cuts=st.lists(st.integers(0, 200), max_size=12),
    data=st.data(),
)
def test_no_secret_survives_any_split_of_any_text(
    secrets: list[str], pieces: list[str], cuts: list[int], data: st.DataObject
) -> None:
    # Text made of the secrets' own letters and copies of the secrets, cut anywhere.
    extra = data.draw(st.lists(st.sampled_from(secrets), max_size=4))
    text = "".join(pieces[: len(pieces) // 2] + extra + pieces[len(pieces) // 2 :])
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    redactor = StreamRedactor(secrets)
    out = "".join(redactor.feed(0, text[a:b]) for a, b in zip(bounds, bounds[1:], strict=False))
    out += redactor.flush(0)
    for secret in secrets:
        assert secret not in out
    if not any(s != t and (s in t or _overlap(s, t)) for s in secrets for t in secrets):
        assert out == redact_text(text, secrets)


def _overlap(a: str, b: str) -> bool:
    return any(a.endswith(b[:n]) for n in range(1, min(len(a), len(b))))
