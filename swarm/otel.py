"""OpenTelemetry export (opt-in): swarm's spans and routing decisions as OTLP spans named and
annotated after the OpenTelemetry GenAI semantic conventions. Needs `swarm-dispatch[otel]`.

Each span is exported when it ends, with ids derived from swarm's own (a hash), so a parent that
ends later is still the parent, and the tree needs no state kept in memory: one trace per root task,
its delegated tasks under the `swarm.delegate` span that made them.

Names and attributes follow https://opentelemetry.io/docs/specs/semconv/gen-ai/ (gen-ai-spans and
gen-ai-agent-spans): `invoke_agent {agent}`, `chat {model}`, `execute_tool {tool}`.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from swarm.errors import ConfigError

if TYPE_CHECKING:
    from swarm.context import Span
    from swarm.models import Decision, Result, Task

__all__ = [
    "OTEL_CONTENT_ENV",
    "OTEL_ENDPOINT_ENV",
    "OtelExport",
    "OtelSink",
    "span_ids",
    "trace_headers",
]

OTEL_ENDPOINT_ENV = "SWARM_OTEL_ENDPOINT"
"""An OTLP/HTTP endpoint (`http://127.0.0.1:4318`; `/v1/traces` is added when no path is given)."""
OTEL_CONTENT_ENV = "SWARM_OTEL_CONTENT"
"""`1` to export message and tool-argument content (off by default: it may hold personal data)."""


_TRACEPARENT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "swarm_traceparent", default=None
)


def trace_headers() -> dict[str, str]:
    """`{"traceparent": ...}` (W3C Trace Context) while an exported task's agent runs, else `{}`.

    The LLM client and `HttpTool` send it, so a service that traces too joins the task's trace,
    under its `swarm.task` span.
    """
    value = _TRACEPARENT.get()
    return {"traceparent": value} if value else {}


class OtelExport:
    """Where spans go and what they carry.

    - `endpoint`: an OTLP/HTTP URL; or give `exporter`, any OpenTelemetry `SpanExporter` (an
      in-memory one in tests, a gRPC one).
    - `content`: export prompts, answers, tool arguments and tool results (off by default).
    - `headers`: sent with every export (an API key for a hosted backend).

    Spans are batched on a background thread of the OpenTelemetry SDK (`BatchSpanProcessor`);
    `shutdown()` (the swarm calls it when it closes) sends what is left. Raises `ConfigError` when
    the `[otel]` extra is missing or neither `endpoint` nor `exporter` is given.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        exporter: Any = None,
        content: bool = False,
        headers: Mapping[str, str] | None = None,
        service_name: str = "swarm",
    ) -> None:
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "OpenTelemetry export needs the `[otel]` extra: pip install 'swarm-dispatch[otel]'"
            ) from None
        if exporter is None:
            if not endpoint:
                raise ConfigError("OtelExport needs an `endpoint` (OTLP/HTTP URL) or an `exporter`")
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=_traces_url(endpoint), headers=dict(headers or {}))
        self.endpoint = endpoint
        self.content = content
        self.resource = Resource.create({"service.name": service_name})
        self.scope = InstrumentationScope("swarm", _version())
        self.processor = BatchSpanProcessor(exporter)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OtelExport | None:
        """From `$SWARM_OTEL_ENDPOINT` (and `$SWARM_OTEL_CONTENT`); None when unset."""
        env = os.environ if environ is None else environ
        endpoint = env.get(OTEL_ENDPOINT_ENV, "").strip()
        if not endpoint:
            return None
        return cls(endpoint, content=env.get(OTEL_CONTENT_ENV, "") in ("1", "true", "yes"))

    def sink(self, inner: Any) -> OtelSink:
        """A scheduler sink that writes to `inner` (the trace store, or None) and exports."""
        return OtelSink(self, inner)

    def flush(self) -> None:
        """Send every span queued so far (blocking); export goes on."""
        self.processor.force_flush()

    def shutdown(self) -> None:
        """Send every span still queued, then stop the export thread (blocking)."""
        self.processor.shutdown()


class OtelSink:
    """The scheduler's sink (`swarm.scheduler.Sink`): passes every call to the store it wraps and
    exports the spans, routing decisions and one `swarm.task` span per task.

    An export never fails the task: a bad value is dropped from the attributes, and the SDK logs
    (and drops) batches the endpoint refuses.
    """

    def __init__(self, export: OtelExport, inner: Any = None) -> None:
        self.export = export
        self.inner = inner
        self._lock = threading.Lock()
        self._tasks: dict[str, tuple[str, str | None, float]] = {}  # id -> (root, parent, queued)

    # -- the Sink protocol ----------------------------------------------------------------------

    def task_queued(self, task: Task, *, resumed: bool = False) -> None:
        if self.inner is not None:
            self.inner.task_queued(task, resumed=resumed)
        with self._lock:
            parent = self._tasks.get(task.parent) if task.parent else None
            root = parent[0] if parent is not None else (task.parent or task.id)
            self._tasks[task.id] = (root, task.parent, time.time())

    def task_started(self, task_id: str, agent: str, attempt: int) -> None:
        if self.inner is not None:
            self.inner.task_started(task_id, agent, attempt)
        # Called in the task that then runs the agent: what the agent sends carries the trace.
        trace = _trace(self._root(task_id))
        _TRACEPARENT.set(f"00-{trace:032x}-{_task_span(task_id):016x}-01")

    def task_finished(self, result: Result) -> None:
        if self.inner is not None:
            self.inner.task_finished(result)
        with self._lock:
            root, parent, queued = self._tasks.pop(result.task_id, (result.task_id, None, None))
        attrs: dict[str, Any] = {
            "swarm.task.id": result.task_id,
            "swarm.task.status": str(result.status),
            "swarm.task.attempts": result.attempts,
        }
        if result.agent:
            attrs["gen_ai.agent.name"] = result.agent
        if result.hops:
            attrs["swarm.task.hops"] = list(result.hops)
        if result.error:
            attrs["error.type"] = str(result.status)
        now = time.time()
        self._emit(
            "swarm.task",
            span_id=_task_span(result.task_id),
            trace_id=_trace(root),
            parent_id=_delegate_span(result.task_id) if parent else None,
            start=queued if queued is not None else now,
            end=now,
            attributes=attrs,
            error=result.error if str(result.status) == "failed" else None,
        )

    def record_decision(self, task_id: str, decision: Decision) -> None:
        if self.inner is not None:
            self.inner.record_decision(task_id, decision)
        root = self._root(task_id)
        now = time.time()
        attrs: dict[str, Any] = {
            "swarm.route.status": decision.status,
            "swarm.route.confidence": float(decision.confidence),
            "swarm.route.out_of_scope": decision.out_of_scope,
            "swarm.route.router_version": decision.version or "",
            "swarm.route.candidates": [name for name, _ in decision.candidates],
            "swarm.route.candidate_probabilities": [float(p) for _, p in decision.candidates],
        }
        if decision.agent is not None:
            attrs["gen_ai.agent.name"] = decision.agent
        self._emit(
            "swarm.route",
            span_id=_hash64(f"route:{task_id}:{now}"),
            trace_id=_trace(root),
            parent_id=_task_span(task_id),
            start=now - decision.latency_ms / 1000,
            end=now,
            attributes=attrs,
        )

    def record_span(self, span: Span) -> None:
        if self.inner is not None:
            self.inner.record_span(span)
        name, attrs = describe(span, content=self.export.content)
        span_id = (
            _delegate_span(str(span.attributes["child_task"]))
            if span.kind == "delegate" and "child_task" in span.attributes
            else _hash64(span.id)
        )
        self._emit(
            name,
            span_id=span_id,
            trace_id=_trace(self._root(span.task_id)),
            parent_id=_hash64(span.parent_id) if span.parent_id else _task_span(span.task_id),
            start=span.started_at,
            end=span.ended_at or time.time(),
            attributes=attrs,
            error=span.error if span.status == "error" else None,
        )

    async def flush(self) -> None:
        if self.inner is not None:
            await self.inner.flush()

    # -- export ---------------------------------------------------------------------------------

    def _root(self, task_id: str) -> str:
        with self._lock:
            known = self._tasks.get(task_id)
        return known[0] if known is not None else task_id

    def _emit(
        self,
        name: str,
        *,
        span_id: int,
        trace_id: int,
        parent_id: int | None,
        start: float,
        end: float,
        attributes: Mapping[str, Any],
        error: str | None = None,
    ) -> None:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        flags = TraceFlags(TraceFlags.SAMPLED)
        context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags)
        parent = (
            SpanContext(trace_id, parent_id, is_remote=False, trace_flags=flags)
            if parent_id is not None
            else None
        )
        status = Status(StatusCode.ERROR, error) if error else Status(StatusCode.UNSET)
        kind = SpanKind.CLIENT if name.startswith(("chat ", "execute_tool ")) else SpanKind.INTERNAL
        self.export.processor.on_end(
            ReadableSpan(
                name,
                context=context,
                parent=parent,
                resource=self.export.resource,
                attributes=_clean(attributes),
                kind=kind,
                status=status,
                start_time=int(start * 1e9),
                end_time=int(max(end, start) * 1e9),
                instrumentation_scope=self.export.scope,
            )
        )


def describe(span: Span, *, content: bool = False) -> tuple[str, dict[str, Any]]:
    """The OpenTelemetry name and attributes of a swarm span (GenAI semantic conventions)."""
    a = span.attributes
    attrs: dict[str, Any] = {"swarm.span.kind": span.kind, "swarm.task.id": span.task_id}
    if span.status != "ok":
        attrs["swarm.span.status"] = span.status
    exception = a.get("exception")
    if span.status == "error":
        etype = exception.get("type") if isinstance(exception, Mapping) else None
        attrs["error.type"] = str(etype or (span.error or "error").split(":")[0])
    if span.kind == "agent":
        if span.name.startswith("handoff:"):
            attrs["swarm.handoff"] = span.name.removeprefix("handoff:")
            return "swarm.handoff", attrs
        attrs["gen_ai.operation.name"] = "invoke_agent"
        attrs["gen_ai.agent.name"] = span.name
        if "attempt" in a:
            attrs["swarm.attempt"] = a["attempt"]
        return f"invoke_agent {span.name}", attrs
    if span.kind == "llm":
        model = str(a.get("model") or span.name)
        attrs["gen_ai.operation.name"] = "chat"
        attrs["gen_ai.request.model"] = model
        endpoint = str(a.get("endpoint") or "")
        parsed = urlsplit(endpoint)
        if parsed.scheme in ("http", "https"):
            attrs["gen_ai.provider.name"] = "openai"  # the OpenAI-compatible API swarm speaks
            if parsed.hostname:
                attrs["server.address"] = parsed.hostname
            if parsed.port:
                attrs["server.port"] = parsed.port
        elif endpoint:
            attrs["gen_ai.provider.name"] = endpoint
        response = a.get("response")
        if isinstance(response, Mapping):
            if response.get("model"):
                attrs["gen_ai.response.model"] = str(response["model"])
            if response.get("id"):
                attrs["gen_ai.response.id"] = str(response["id"])
        if isinstance(a.get("prompt_tokens"), int):
            attrs["gen_ai.usage.input_tokens"] = a["prompt_tokens"]
        if isinstance(a.get("completion_tokens"), int):
            attrs["gen_ai.usage.output_tokens"] = a["completion_tokens"]
        if a.get("finish_reason"):
            attrs["gen_ai.response.finish_reasons"] = [str(a["finish_reason"])]
        request = a.get("request")
        if isinstance(request, Mapping):
            for key in ("temperature", "max_tokens", "top_p"):
                if request.get(key) is not None:
                    attrs[f"gen_ai.request.{key}"] = request[key]
            if content and request.get("messages") is not None:
                attrs["gen_ai.input.messages"] = _json(request["messages"])
        if content and isinstance(response, Mapping) and response.get("choices"):
            attrs["gen_ai.output.messages"] = _json(
                [c.get("message") for c in response["choices"] if isinstance(c, Mapping)]
            )
        return f"chat {model}", attrs
    if span.kind == "tool":
        attrs["gen_ai.operation.name"] = "execute_tool"
        attrs["gen_ai.tool.name"] = span.name
        if a.get("replayed"):
            attrs["swarm.replayed"] = True
        if content and "arguments" in a:
            attrs["gen_ai.tool.call.arguments"] = _json(a["arguments"])
        if content and "output" in a:
            attrs["gen_ai.tool.call.result"] = _json(a["output"])
        return f"execute_tool {span.name}", attrs
    if span.kind == "delegate":
        attrs["swarm.delegate.agent"] = span.name
        if "child_task" in a:
            attrs["swarm.delegate.child_task"] = str(a["child_task"])
        return f"swarm.delegate {span.name}", attrs
    return f"swarm.{span.kind} {span.name}", attrs


def span_ids(task_id: str, span_id: str, *, root: str | None = None) -> tuple[str, str]:
    """(trace id, span id) in W3C hex of a swarm span, as exported (for a `traceparent`)."""
    return f"{_trace(root or task_id):032x}", f"{_hash64(span_id):016x}"


def _trace(root_task: str) -> int:
    return int.from_bytes(hashlib.sha256(b"trace:" + root_task.encode()).digest()[:16], "big") or 1


def _hash64(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") or 1


def _task_span(task_id: str) -> int:
    return _hash64(f"task:{task_id}")


def _delegate_span(child_task: str) -> int:
    # Known from the child's own id, so the child's spans (exported first) can name their parent.
    return _hash64(f"delegate:{child_task}")


def _clean(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Only values OpenTelemetry can carry: primitives and homogeneous lists of them."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, str | bool | int | float):
            out[key] = value
        elif isinstance(value, list | tuple) and all(
            isinstance(v, str | bool | int | float) for v in value
        ):
            kinds = {type(v) for v in value}
            out[key] = list(value) if len(kinds) <= 1 else [str(v) for v in value]
        elif value is not None:
            out[key] = _json(value)
    return out


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _traces_url(endpoint: str) -> str:
    parsed = urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(
            f"{OTEL_ENDPOINT_ENV} / OtelExport endpoint must be an http(s) URL, got {endpoint!r}"
        )
    return endpoint if parsed.path not in ("", "/") else endpoint.rstrip("/") + "/v1/traces"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("swarm-dispatch")
    except PackageNotFoundError:  # pragma: no cover - a source checkout
        return "0"
