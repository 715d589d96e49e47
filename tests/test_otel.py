"""OpenTelemetry export through the real OTLP/HTTP exporter to a receiver on 127.0.0.1 that
decodes what arrives: names, one trace per root task, parents and GenAI attributes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from swarm import Context, Swarm, Task, agent, tool  # noqa: E402
from swarm.errors import ConfigError  # noqa: E402
from swarm.llm import LLM, LLMAgent  # noqa: E402
from swarm.otel import OtelExport  # noqa: E402
from swarm.testing import FakeRouter  # noqa: E402
from swarm.testing.llm import ScriptedLLM, call_tool  # noqa: E402
from swarm.tools import HttpTool  # noqa: E402
from swarm.trace import TraceStore  # noqa: E402


class Receiver:
    """An OTLP/HTTP traces endpoint: keeps every span of every request, decoded."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.seen: list[tuple[str, str | None]] = []  # (path, traceparent) of other requests
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
                received.seen.append((self.path, self.headers.get("traceparent")))
                self._answer(b"a page", "text/plain")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path.endswith("/chat/completions"):
                    received.seen.append((self.path, self.headers.get("traceparent")))
                    self._answer(json.dumps(_chat(json.loads(body))).encode(), "application/json")
                    return
                request = ExportTraceServiceRequest.FromString(body)
                received.paths.append(self.path)
                for resource in request.resource_spans:
                    service = {a.key: a.value.string_value for a in resource.resource.attributes}
                    for scope in resource.scope_spans:
                        for s in scope.spans:
                            received.spans.append(_decode(s, service, scope.scope.name))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def _answer(self, body: bytes, ctype: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def named(self, name: str) -> dict[str, Any]:
        (found,) = [s for s in self.spans if s["name"] == name]
        return found


def _chat(request: dict[str, Any]) -> dict[str, Any]:
    """A one-tool model: fetch the page first, then answer."""
    if request["messages"][-1]["role"] == "tool":
        message: dict[str, Any] = {"role": "assistant", "content": "fetched"}
    else:
        url = request["messages"][-1]["content"]
        arguments = json.dumps({"url": url})
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "http_request", "arguments": arguments},
                }
            ],
        }
    return {
        "id": "r",
        "object": "chat.completion",
        "created": 0,
        "model": request["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind)


def _decode(s: Any, service: dict[str, str], scope: str) -> dict[str, Any]:
    return {
        "name": s.name,
        "trace": s.trace_id.hex(),
        "id": s.span_id.hex(),
        "parent": s.parent_span_id.hex() or None,
        "attrs": {a.key: _value(a.value) for a in s.attributes},
        "status": s.status.code,
        "service": service.get("service.name"),
        "scope": scope,
        "start": s.start_time_unix_nano,
        "end": s.end_time_unix_nano,
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


@tool
def lookup(order: str) -> str:
    """Look an order up.

    Args:
        order: the order number
    """
    return f"{order}: shipped"


class Helper(LLMAgent):
    name = "helper"
    description = "Order questions"
    examples = ["where is my order"]
    tools = [lookup]


@agent(examples=["please handle this"])
async def boss(task: Task, ctx: Context) -> Any:
    """Delegates order questions."""
    return (await ctx.delegate("where is order A1", agent="helper")).output


async def test_spans_arrive_with_genai_names_parents_and_attributes(
    receiver: Receiver, store: TraceStore
) -> None:
    llm = ScriptedLLM([call_tool("lookup", order="A1"), "A1 has shipped"], model="tiny-1")
    async with Swarm(
        [boss, Helper()], router=FakeRouter(default="boss"), db=store, llm=llm,
        otel=receiver.url,
    ) as s:
        result = await s.run("please handle this")
    assert result.output == "A1 has shipped", result.error
    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}

    spans = receiver.spans
    assert {s["trace"] for s in spans} == {spans[0]["trace"]}  # one trace for the whole tree
    assert {s["service"] for s in spans} == {"swarm"} and spans[0]["scope"] == "swarm"
    by_id = {s["id"]: s for s in spans}

    def parent(span: dict[str, Any]) -> str | None:
        return by_id[span["parent"]]["name"] if span["parent"] else None

    tasks = [s for s in spans if s["name"] == "swarm.task"]
    (root,) = [t for t in tasks if t["parent"] is None]
    (child,) = [t for t in tasks if t["parent"] is not None]
    assert root["attrs"]["gen_ai.agent.name"] == "boss"
    assert root["attrs"]["swarm.task.status"] == "done"
    routes = [s for s in spans if s["name"] == "swarm.route"]
    assert {by_id[r["parent"]]["id"] for r in routes} <= {root["id"], child["id"]}
    root_route = next(r for r in routes if r["parent"] == root["id"])
    assert root_route["attrs"]["gen_ai.agent.name"] == "boss"
    assert root_route["attrs"]["swarm.route.out_of_scope"] is False
    assert "swarm.route.confidence" in root_route["attrs"]
    assert "swarm.route.router_version" in root_route["attrs"]

    boss_span = receiver.named("invoke_agent boss")
    assert boss_span["parent"] == root["id"]
    assert boss_span["attrs"]["gen_ai.operation.name"] == "invoke_agent"
    assert boss_span["attrs"]["gen_ai.agent.name"] == "boss"
    delegate = receiver.named("swarm.delegate helper")
    assert parent(delegate) == "invoke_agent boss"
    assert child["parent"] == delegate["id"]
    helper_span = receiver.named("invoke_agent helper")
    assert helper_span["parent"] == child["id"]

    chats = [s for s in spans if s["name"] == "chat tiny-1"]
    assert len(chats) == 2 and all(c["parent"] == helper_span["id"] for c in chats)
    chat = chats[0]["attrs"]
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.request.model"] == "tiny-1"
    assert chat["gen_ai.response.model"] == "tiny-1"
    assert chat["gen_ai.provider.name"] == "scripted"
    assert chat["gen_ai.usage.input_tokens"] > 0 and "gen_ai.usage.output_tokens" in chat
    assert "gen_ai.input.messages" not in chat  # content only when asked

    call = receiver.named("execute_tool lookup")
    assert call["parent"] == helper_span["id"]
    assert call["attrs"]["gen_ai.tool.name"] == "lookup"
    assert "gen_ai.tool.call.arguments" not in call["attrs"]
    assert all(s["start"] <= s["end"] for s in spans)


async def test_content_is_exported_only_when_asked_and_errors_set_the_status(
    receiver: Receiver,
) -> None:
    @agent(examples=["fail"])
    async def failing(task: Task, ctx: Context) -> None:
        """Calls a tool that fails."""
        await ctx.tool(lookup, order="B2")
        raise RuntimeError("cannot finish")

    export = OtelExport(receiver.url, content=True)
    try:
        async with Swarm([failing], router=FakeRouter(default="failing"), db=None, otel=export):
            pass  # nothing run: the export must survive the swarm's close (not shut down)
        async with Swarm(
            [failing], router=FakeRouter(default="failing"), db=None, otel=export
        ) as s:
            result = await s.run("fail please")
    finally:
        export.shutdown()
    assert result.error is not None
    call = receiver.named("execute_tool lookup")
    assert call["attrs"]["gen_ai.tool.call.arguments"] == '{"order": "B2"}'
    assert call["attrs"]["gen_ai.tool.call.result"] == '"B2: shipped"'
    failed = receiver.named("invoke_agent failing")
    assert failed["status"] == 2  # STATUS_CODE_ERROR
    assert receiver.named("swarm.task")["attrs"]["swarm.task.status"] == "failed"


def test_nothing_is_sent_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWARM_OTEL_ENDPOINT", raising=False)
    assert OtelExport.from_env() is None
    with pytest.raises(ConfigError, match="must be an http"):
        OtelExport("127.0.0.1:4318")
    env = {"SWARM_OTEL_ENDPOINT": "http://127.0.0.1:9/", "SWARM_OTEL_CONTENT": "1"}
    export = OtelExport.from_env(env)
    assert export is not None and export.content and export.endpoint == "http://127.0.0.1:9/"
    export.shutdown()


async def test_http_tools_and_llm_calls_carry_the_tasks_traceparent(receiver: Receiver) -> None:
    class Fetcher(LLMAgent):
        name = "fetcher"
        description = "Fetches pages"
        examples = ["fetch a page"]
        tools = [HttpTool(["127.0.0.1"], allow_private=True)]

    llm = LLM.from_config({"base_url": receiver.url + "/v1", "model": "tiny-http"})
    async with Swarm(
        [Fetcher()], router=FakeRouter(default="fetcher"), db=None, llm=llm, otel=receiver.url
    ) as s:
        result = await s.run(receiver.url + "/page")
    assert result.output == "fetched", result.error
    assert [path for path, _ in receiver.seen] == [
        "/v1/chat/completions", "/page", "/v1/chat/completions",
    ]
    task = receiver.named("swarm.task")
    expected = f"00-{task['trace']}-{task['id']}-01"
    assert [tp for _, tp in receiver.seen] == [expected] * 3
    chat = next(sp for sp in receiver.spans if sp["name"] == "chat tiny-http")["attrs"]
    assert chat["gen_ai.provider.name"] == "openai" and chat["server.address"] == "127.0.0.1"
