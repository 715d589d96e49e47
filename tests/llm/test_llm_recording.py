"""Every call through a bound LLM is a span; spans replay offline, byte for byte; a missing
recording is a clear error, never a live call."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from llm_fakes import FakeOpenAI, ListSink, chunk, completion

from swarm import Swarm, Task, agent
from swarm.context import Context
from swarm.errors import BackendError, LLMStatusError, ReplayMissing
from swarm.llm import (
    LLM,
    ChatRequest,
    EndpointConfig,
    HTTPBackend,
    Message,
    RecordingBackend,
    ReplayBackend,
    redact,
    request_hash,
)
from swarm.testing import FakeRouter
from swarm.testing.llm import ScriptedLLM
from swarm.trace import TraceStore

KEY = "sk-live-secret-4242424242"


def dumps(raw: Any) -> str:
    return json.dumps(raw, sort_keys=True)


async def test_bound_call_records_an_llm_span(
    server: FakeOpenAI, sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    server.json(completion("recorded", model="m"))
    async with LLM(HTTPBackend(EndpointConfig(base_url=server.url, model="m", api_key=KEY))) as llm:
        ctx = make_ctx()
        reply = await llm.bind(ctx).chat(["What is 2+2?"], temperature=0)
    (span,) = sink.of("llm")
    assert span.name == "m" and span.status == "ok"
    assert span.task_id == ctx.task.id and span.run_id == "run-1"
    attrs = span.attributes
    assert attrs["request"]["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert attrs["request"]["temperature"] == 0
    assert attrs["response"] == reply.raw
    assert (attrs["prompt_tokens"], attrs["completion_tokens"], attrs["total_tokens"]) == (5, 2, 7)
    assert attrs["latency_ms"] >= 0 and attrs["finish_reason"] == "stop"
    assert attrs["endpoint"] == server.url
    assert attrs["request_hash"] == request_hash(llm.request(["What is 2+2?"], temperature=0))
    json.dumps(attrs)  # the store keeps attributes as JSON
    assert KEY not in dumps(attrs)


async def test_secrets_in_the_request_body_are_redacted(
    server: FakeOpenAI, sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    config = EndpointConfig(base_url=server.url, api_key=KEY)
    async with LLM(HTTPBackend(config)) as llm:
        # A proxy that takes the key in the body, and a user who pasted it into a message.
        await llm.bind(make_ctx()).chat([f"my key is {KEY}"], api_key=KEY, user="u1")
    recorded = dumps(sink.spans[0].attributes)
    assert KEY not in recorded
    assert sink.spans[0].attributes["request"]["api_key"] == "***"
    assert "my key is ***" in recorded
    assert server.requests[0]["body"]["api_key"] == KEY  # the server itself still gets it


def test_redact_masks_credential_fields_but_not_token_counts() -> None:
    body = {"max_tokens": 5, "Authorization": "Bearer x", "nested": [{"password": "p"}]}
    masked = {"max_tokens": 5, "Authorization": "***", "nested": [{"password": "***"}]}
    assert redact(body) == masked


async def test_failed_call_is_an_error_span(
    server: FakeOpenAI, sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    server.json({"error": {"message": "bad"}}, 400)
    async with LLM(HTTPBackend(EndpointConfig(base_url=server.url))) as llm:
        with pytest.raises(BackendError):
            await llm.bind(make_ctx()).chat(["x"])
    (span,) = sink.of("llm")
    assert span.status == "error" and "bad" in (span.error or "")
    assert "request_hash" in span.attributes and "response" not in span.attributes


async def test_unbound_client_records_nothing(server: FakeOpenAI, sink: ListSink) -> None:
    async with LLM(HTTPBackend(EndpointConfig(base_url=server.url))) as llm:
        await llm.chat(["x"])
    assert sink.spans == []


async def test_spans_replay_byte_identical_without_the_server(
    server: FakeOpenAI, sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    server.json(completion("first answer", usage_extra=1.25))
    server.json(completion("second answer"))
    server.sse([chunk("str", role="assistant"), chunk("eamed"), chunk(finish="stop")])
    async with LLM(HTTPBackend(EndpointConfig(base_url=server.url, model="m"))) as llm:
        live = llm.bind(make_ctx())
        one = await live.chat(["q1"])
        two = await live.chat(["q2"], max_tokens=9)
        async with live.stream(["q3"]) as stream:
            live_chunks = [c.model_dump_json() async for c in stream]
    await server.close()  # nothing to answer from now on

    # The records as the trace store gives them back: plain dicts, JSON round-tripped.
    rows = [
        {"kind": s.kind, "attributes": json.loads(json.dumps(s.attributes))} for s in sink.spans
    ]
    replay = LLM(ReplayBackend.from_spans(rows), model="m")
    assert dumps((await replay.chat(["q1"])).raw) == dumps(one.raw)
    assert dumps((await replay.chat(["q2"], max_tokens=9)).raw) == dumps(two.raw)
    async with replay.stream(["q3"]) as stream:
        replayed = [c.model_dump_json() async for c in stream]
    assert replayed == live_chunks
    assert stream.response is not None and stream.response.content == "streamed"


async def test_replay_from_span_objects_and_in_call_order(
    sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    scripted = ScriptedLLM(["roll: 3", "roll: 5"])
    live = LLM(scripted).bind(make_ctx())
    await live.chat(["roll a die"])
    await live.chat(["roll a die"])
    replay = LLM(ReplayBackend.from_spans(sink.spans), model="scripted")
    got = [(await replay.chat(["roll a die"])).content for _ in range(3)]
    assert got == ["roll: 3", "roll: 5", "roll: 5"]  # in order, then the last repeats


async def test_missing_recording_names_the_request() -> None:
    replay = LLM(ReplayBackend({}), model="gpt-x")
    request = replay.request([Message.system("You are terse."), "Where is my parcel?"])
    with pytest.raises(ReplayMissing) as caught:
        await replay.complete(request)
    text = str(caught.value)
    assert "'gpt-x'" in text and "You are terse." in text
    assert request_hash(request) in text and caught.value.request_hash == request_hash(request)
    with pytest.raises(ReplayMissing):
        await replay.stream(["Where is my parcel?"]).collect()


async def test_replay_skips_other_kinds_and_failed_calls() -> None:
    spans = [
        {"kind": "tool", "attributes": {"request_hash": "a", "response": {"choices": []}}},
        {"kind": "llm", "attributes": {"request_hash": "b"}},  # failed: no response
        {"kind": "llm", "attributes": {"request_hash": "c", "response": completion("c")}},
    ]
    assert len(ReplayBackend.from_spans(spans)) == 1


async def test_replay_answers_are_copies() -> None:
    request = ChatRequest(model="m", messages=[Message.user("x")])
    replay = ReplayBackend({request_hash(request): completion("same")})
    first = await replay.complete(request)
    first.raw["choices"][0]["message"]["content"] = "mutated"
    assert (await replay.complete(request)).content == "same"


def test_request_hash_is_stable_and_canonical() -> None:
    request = ChatRequest(model="m", messages=[Message.user("hello")], temperature=0.0)
    # Pinned, with the canonical text it hashes: a change here orphans every recording made.
    canonical = b'{"messages":[{"content":"hello","role":"user"}],"model":"m","temperature":0.0}'
    assert request_hash(request) == hashlib.sha256(canonical).hexdigest()
    assert request_hash(request) == (
        "1ffd1d7118b53137f95ac26fdda7ace9d112f8c6b630e622b76d4ed2c6b3ca14"
    )
    reordered = {
        "temperature": 0.0,
        "messages": [{"content": "hello", "role": "user"}],
        "model": "m",
        "stream": True,
    }
    assert request_hash(reordered) == request_hash(request)
    assert request_hash(request.model_copy(update={"temperature": 0.5})) != request_hash(request)
    other = ChatRequest(model="m", messages=[Message.user("hello!")], temperature=0.0)
    assert request_hash(other) != request_hash(request)


async def test_recording_backend_replays_without_a_store(server: FakeOpenAI) -> None:
    server.json(completion("kept"))
    server.sse([chunk("a"), chunk("b", finish="stop")])
    recorder = RecordingBackend(HTTPBackend(EndpointConfig(base_url=server.url, model="m")))
    async with LLM(recorder) as llm:
        live = await llm.chat(["q"])
        streamed = await llm.stream(["s"]).collect()
    saved = json.loads(json.dumps({"r": recorder.recordings(), "s": recorder.streams()}))
    replay = LLM(ReplayBackend(saved["r"], streams=saved["s"]), model="m")
    assert dumps((await replay.chat(["q"])).raw) == dumps(live.raw)
    assert (await replay.stream(["s"]).collect()).content == streamed.content == "ab"


async def test_stream_span_is_recorded_at_the_end_not_around_the_consumer(
    sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    ctx = make_ctx()
    llm = LLM(ScriptedLLM(["one two three"])).bind(ctx)
    async with ctx.span("agent", "outer") as outer, llm.stream(["x"]) as stream:
        async for _ in stream:
            # Work done between chunks belongs to the caller, not to the LLM call.
            async with ctx.span("tool", "between"):
                pass
    between = sink.of("tool")[0]
    llm_span = sink.of("llm")[0]
    assert between.parent_id == outer.id
    assert llm_span.parent_id == outer.id
    assert llm_span.attributes["stream"] is True and llm_span.attributes["complete"] is True
    assert len(llm_span.attributes["chunks"]) == 4
    assert llm_span.attributes["response"]["choices"][0]["message"]["content"] == "one two three"
    assert llm_span.ended_at is not None and llm_span.started_at <= between.started_at


async def test_stream_abandoned_early_is_recorded_incomplete(
    sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    llm = LLM(ScriptedLLM(["one two three"])).bind(make_ctx())
    async with llm.stream(["x"]) as stream:
        async for _ in stream:
            break
    (span,) = sink.of("llm")
    assert span.attributes["complete"] is False and "response" not in span.attributes


async def test_a_swarm_given_a_bare_backend_records_through_a_client(store: TraceStore) -> None:
    @agent(examples=["say hi"])
    async def greeter(task: Task, ctx: Context) -> str:
        assert isinstance(ctx.llm, LLM) and ctx.llm.ctx is ctx
        await ctx.llm.aclose()  # a view never closes the shared backend
        return (await ctx.llm.chat(["x"])).content

    async with Swarm(
        [greeter], router=FakeRouter(default="greeter"), db=store, llm=ScriptedLLM(["hi"])
    ) as s:
        result = await s.run("say hi")
    assert result.output == "hi"
    assert [sp["kind"] for sp in store.spans(run_id=s.run_id, kind="llm")] == ["llm"]


def test_the_backend_module_does_not_import_the_client() -> None:
    # The cycle of issue 12 (client -> backend -> client, through Backend.bind) stays broken:
    # no chain of imports, inside functions included, leads from the backends to the client.
    import grimp

    graph = grimp.build_graph("swarm", cache_dir=None)
    for module in ("swarm.llm.backend", "swarm.llm.http", "swarm.llm.replay"):
        assert graph.find_shortest_chain(importer=module, imported="swarm.llm.client") is None


async def test_replay_defaults_to_the_recorded_model_and_hints_at_a_mismatch(
    sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    await LLM(ScriptedLLM(["x"], model="small-1")).bind(make_ctx()).chat(["q"])
    replay = ReplayBackend.from_spans(sink.spans)
    assert (await LLM(replay).chat(["q"])).content == "x"
    with pytest.raises(ReplayMissing, match="recorded requests used model.s. small-1"):
        await LLM(replay).chat(["q"], model="large-2")


async def test_the_recorded_response_is_not_the_callers_object(
    sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    reply = await LLM(ScriptedLLM(["kept"])).bind(make_ctx()).chat(["q"])
    reply.raw["choices"][0]["message"]["content"] = "changed by the caller"
    recorded = sink.of("llm")[0].attributes["response"]
    assert recorded["choices"][0]["message"]["content"] == "kept"


# -- errors and cut streams replay as they happened -------------------------------------------


def store_rows(sink: ListSink) -> list[dict[str, Any]]:
    """The spans as the trace store gives them back: plain dicts, JSON round-tripped."""
    return [
        {"kind": s.kind, "status": s.status, "attributes": json.loads(json.dumps(s.attributes))}
        for s in sink.spans
    ]


async def test_a_failed_call_replays_as_the_same_error_then_the_answer(
    sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    busy = LLMStatusError("endpoint busy (HTTP 503)", status_code=503, body="later")
    live = LLM(ScriptedLLM([busy, "fine now"])).bind(make_ctx())
    with pytest.raises(LLMStatusError):
        await live.chat(["q"])
    assert (await live.chat(["q"])).content == "fine now"
    replay = LLM(ReplayBackend.from_spans(store_rows(sink)), model="scripted")
    with pytest.raises(LLMStatusError) as caught:
        await replay.chat(["q"])
    assert str(caught.value) == "endpoint busy (HTTP 503)"
    assert (caught.value.status_code, caught.value.body) == (503, "later")
    assert (await replay.chat(["q"])).content == "fine now"


async def test_a_cut_stream_replays_its_chunks_then_its_error(
    server: FakeOpenAI, sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    server.sse([chunk("half ", role="assistant"), chunk("an answer")], cut=True)
    async with LLM(HTTPBackend(EndpointConfig(base_url=server.url, model="m"))) as llm:
        seen: list[str] = []
        with pytest.raises(BackendError) as live_error:
            async with llm.bind(make_ctx()).stream(["q"]) as stream:
                async for piece in stream:
                    seen.append(piece.delta)
    assert seen == ["half ", "an answer"]
    replay = LLM(ReplayBackend.from_spans(store_rows(sink)), model="m")
    again: list[str] = []
    with pytest.raises(BackendError) as replay_error:
        async with replay.stream(["q"]) as stream:
            async for piece in stream:
                again.append(piece.delta)
    assert again == seen
    assert type(replay_error.value) is type(live_error.value)
    assert str(replay_error.value) == str(live_error.value)


async def test_a_recording_backend_replays_errors_in_order() -> None:
    recorder = RecordingBackend(ScriptedLLM([ReplayMissing("gone", request_hash="h"), "ok"]))
    llm = LLM(recorder)
    with pytest.raises(ReplayMissing):
        await llm.chat(["q"])
    await llm.chat(["q"])
    replay = LLM(recorder.replay())
    with pytest.raises(ReplayMissing) as caught:
        await replay.chat(["q"])
    assert caught.value.request_hash == "h"
    assert (await replay.chat(["q"])).content == "ok"
