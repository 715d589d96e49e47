"""`LLM`, what agents call: builds requests, calls a backend, and, once bound to a task's context,
records every call as an `llm` span (redacted request, response, chunks and error; tokens, latency,
request_hash).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from swarm.errors import ConfigError
from swarm.llm.backend import LLMBackend, assemble_stream
from swarm.llm.config import EndpointConfig
from swarm.llm.http import HTTPBackend
from swarm.llm.redaction import StreamRedactor, redact, redact_exception
from swarm.llm.replay import ResumeBackend, request_hash
from swarm.llm.routed import RoutedBackend
from swarm.llm.types import ChatChunk, ChatRequest, ChatResponse, Message

if TYPE_CHECKING:
    from swarm.context import Context

__all__ = ["LLM", "ChatStream", "redact"]

MessageLike = Message | Mapping[str, Any] | str
"""A `Message`, its dict form, or a bare string (a user message)."""


class LLM:
    """The client agents use.

    ```python
    llm = LLM.from_config({"base_url": "http://127.0.0.1:8080/v1", "model": "smollm2"})
    reply = await llm.chat(["Say hi"])                   # -> ChatResponse; reply.content
    async with llm.stream(["Tell a story"]) as stream:  # server-sent events
        async for chunk in stream:
            ...
    await llm.aclose()
    ```

    Give it to a swarm (`Swarm(llm=llm)`): each task's `ctx.llm` is `llm.bind(ctx)`, which
    records every call as a span.
    """

    def __init__(
        self, backend: LLMBackend, *, model: str | None = None, ctx: Context | None = None
    ) -> None:
        self.backend = backend
        self.model = model or getattr(backend, "default_model", None) or "default"
        self.ctx = ctx

    @classmethod
    def from_config(
        cls,
        config: EndpointConfig | Mapping[str, Any] | Sequence[EndpointConfig | Mapping[str, Any]],
        **backend_options: Any,
    ) -> LLM:
        """One endpoint (a config or its mapping), or a list of them routed by model name
        (the first is the default; see `EndpointConfig.models`)."""
        if isinstance(config, Sequence):
            return cls(RoutedBackend.from_configs(config))
        if not isinstance(config, EndpointConfig):
            config = EndpointConfig.from_mapping(config)
        return cls(HTTPBackend(config, **backend_options))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LLM:
        """From `SWARM_LLM_BASE_URL`, `_MODEL`, `_API_KEY` … (see `EndpointConfig.from_env`)."""
        return cls(HTTPBackend(EndpointConfig.from_env(environ)))

    def bind(self, ctx: Context) -> LLM:
        """A view that shares this client's backend and records each call in `ctx`'s trace.

        For a task resumed after an approval, calls its earlier run recorded are answered from
        the trace first (`ResumeBackend`)."""
        if ctx.replay is not None and ctx.replay.llm_spans:
            resumed = ResumeBackend(ctx.replay.llm_spans, self.backend)
            return LLM(resumed, model=self.model, ctx=ctx)
        return LLM(self.backend, model=self.model, ctx=ctx)

    async def aclose(self) -> None:
        """Close the backend (its connection pool). A bound view leaves that to its owner."""
        if self.ctx is None:
            await self.backend.aclose()

    async def __aenter__(self) -> LLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- calls ---------------------------------------------------------------------------------

    def request(
        self,
        messages: Iterable[MessageLike],
        *,
        model: str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> ChatRequest:
        """The request `chat` would send. `tools` takes `@tool` objects or OpenAI tool dicts."""
        if isinstance(messages, str | Message | Mapping):
            raise ConfigError("messages must be a list of Message, dicts or strings, not one item")
        try:
            return ChatRequest(
                model=model or self.model,
                messages=[_message(m) for m in messages],
                tools=[_tool_spec(t) for t in tools] if tools else None,
                tool_choice=_tool_choice(tool_choice),
                response_format=dict(response_format) if response_format else None,
                temperature=temperature,
                max_tokens=max_tokens,
                **extra,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors(include_url=False)
            )
            raise ConfigError(f"bad LLM request: {problems}") from None

    async def chat(
        self,
        messages: Iterable[MessageLike],
        *,
        attempt_timeout: float | None = None,
        **options: Any,
    ) -> ChatResponse:
        """One completion. `attempt_timeout` (seconds) bounds each try, retries apart (wrap the
        call in `asyncio.timeout` to bound it all); `options` go into the request."""
        request = self.request(messages, **options)
        return await self.complete(request, attempt_timeout=attempt_timeout)

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        if self.ctx is None:
            return await self.backend.complete(request, attempt_timeout=attempt_timeout)
        secrets = self.secrets
        async with self.ctx.span("llm", request.model, **self._request_attrs(request)) as span:
            started = time.perf_counter()
            try:
                response = await self.backend.complete(request, attempt_timeout=attempt_timeout)
            except BaseException as exc:
                redact_exception(exc, secrets)  # before the span and the task keep its text
                raise
            span.set(**_response_attrs(response.raw, started, secrets))
        return response

    def stream(
        self,
        messages: Iterable[MessageLike],
        *,
        attempt_timeout: float | None = None,
        **options: Any,
    ) -> ChatStream:
        """A streamed completion: iterate it for `ChatChunk`s; `.response` once it is done.
        `attempt_timeout` bounds the wait for the answer to start and each gap between chunks."""
        request = self.request(messages, **options)
        return self.stream_request(request, attempt_timeout=attempt_timeout)

    def stream_request(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatStream:
        return ChatStream(self, request, attempt_timeout)

    # -- recording -----------------------------------------------------------------------------

    @property
    def secrets(self) -> tuple[str, ...]:
        """What the backend says must never be recorded (its credentials)."""
        return tuple(getattr(self.backend, "secrets", ()))

    def _request_attrs(self, request: ChatRequest) -> dict[str, Any]:
        return {
            "model": request.model,
            "endpoint": _endpoint(self.backend, request),
            "request_hash": request_hash(request),
            "request": redact(request.body(), self.secrets),
        }


class ChatStream:
    """A streamed completion, an async iterator of `ChatChunk`.

    Use it in `async with` so an early `break` closes the connection at once; iterating to the
    end closes it too. After the end, `response` holds the assembled `ChatResponse`. Bound to a
    task (`ctx.llm.stream(...)`), each text chunk is also a `token` event of that task.
    """

    def __init__(self, llm: LLM, request: ChatRequest, timeout: float | None) -> None:
        self.request = request
        self.response: ChatResponse | None = None
        self._llm = llm
        self._timeout = timeout
        self._chunks: AsyncIterator[ChatChunk] | None = None
        self._raw: list[dict[str, Any]] = []
        self._started = 0.0
        self._first: float | None = None
        self._closed = False
        self._redactor: StreamRedactor | None = None

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(ChatChunk.model_validate(c).delta for c in self._raw)

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> ChatChunk:
        if self._closed:
            raise StopAsyncIteration
        if self._chunks is None:
            self._started = time.perf_counter()
            self._chunks = self._llm.backend.stream(self.request, attempt_timeout=self._timeout)
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._publish("", last=True)
            self.response = ChatResponse.from_raw(assemble_stream(self._raw))
            await self._finish(None, complete=True)
            raise
        except BaseException as exc:
            redact_exception(exc, self._llm.secrets)
            await self._finish(exc, complete=False)
            raise
        if self._first is None:
            self._first = time.perf_counter()
        self._raw.append(chunk.model_dump(mode="json", exclude_none=True))
        if chunk.delta:
            self._publish(chunk.delta)
        return chunk

    def _publish(self, text: str, *, last: bool = False) -> None:
        """The text as a `token` event of the bound task, when anyone listens; secrets scrubbed,
        even one split over two chunks (the tail that could start one waits for the next)."""
        ctx = self._llm.ctx
        if ctx is None or ctx.events is None or not ctx.events.active:
            return
        if self._redactor is None:
            self._redactor = StreamRedactor(self._llm.secrets)
        shown = self._redactor.feed(0, text) if text else ""
        if last:
            shown += self._redactor.flush(0)
        if shown:
            ctx.publish("token", {"text": shown})

    async def collect(self) -> ChatResponse:
        """Read to the end; the assembled response."""
        async with self:
            async for _ in self:
                pass
        assert self.response is not None
        return self.response

    async def aclose(self) -> None:
        if not self._closed:
            await self._finish(None, complete=False)

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _finish(self, error: BaseException | None, *, complete: bool) -> None:
        self._closed = True
        chunks, self._chunks = self._chunks, None
        if chunks is not None:
            await chunks.aclose()  # type: ignore[attr-defined]
        ctx = self._llm.ctx
        if ctx is None or (chunks is None and error is None):
            return
        # The span is opened here, at the end, not around the iteration: the caller's code runs
        # between chunks and must not look like it runs inside the LLM call.
        secrets = self._llm.secrets
        attrs = self._llm._request_attrs(self.request)
        attrs.update(stream=True, complete=complete)
        if self._first is not None:
            attrs["ttft_ms"] = round((self._first - self._started) * 1000, 3)
        if complete:
            assert self.response is not None
            attrs.update(_response_attrs(self.response.raw, self._started, secrets))
        else:
            attrs.update(latency_ms=round((time.perf_counter() - self._started) * 1000, 3))
        # What the caller saw before the end (all of it, or up to the failure), for replay.
        attrs["chunks"] = redact(self._raw, secrets, fields=False)
        try:
            async with ctx.span("llm", self.request.model, **attrs) as span:
                span.started_at -= time.perf_counter() - self._started
                if error is not None:
                    raise error
        except BaseException as raised:
            if raised is not error:
                raise


def _endpoint(backend: LLMBackend, request: ChatRequest) -> str:
    where = getattr(backend, "endpoint", None)
    return where(request) if callable(where) else backend.name


def _response_attrs(
    raw: dict[str, Any], started: float, secrets: tuple[str, ...] = ()
) -> dict[str, Any]:
    usage = raw.get("usage") or {}
    choices = raw.get("choices") or [{}]
    return {
        # A copy (redact builds one): the caller owns `raw` and may change it before the store
        # writes the span.
        "response": redact(raw, secrets, fields=False),
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "finish_reason": choices[0].get("finish_reason"),
    }


def _message(item: MessageLike) -> Message:
    if isinstance(item, Message):
        return item
    if isinstance(item, str):
        return Message.user(item)
    return Message.model_validate(dict(item))


def _tool_spec(item: Any) -> dict[str, Any]:
    spec = getattr(item, "spec", None)
    if isinstance(spec, Mapping):
        return dict(spec)
    if isinstance(item, Mapping):
        return dict(item)
    raise ConfigError(f"not a tool: {item!r} (use @tool or an OpenAI tool dict)")


def _tool_choice(choice: str | Mapping[str, Any] | None) -> str | dict[str, Any] | None:
    """`"auto"`, `"none"`, `"required"`, a tool's name, or the OpenAI dict form."""
    if choice is None or isinstance(choice, Mapping):
        return dict(choice) if choice is not None else None
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}
