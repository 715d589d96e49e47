"""The live backend: one pooled httpx.AsyncClient per OpenAI-compatible endpoint, with retries
(backoff, jitter, Retry-After), a concurrency cap, per-call timeouts and server-sent-event streams.
What it returns and raises is already redacted: no credential of the endpoint gets past it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, aclosing
from typing import Any

import httpx

from swarm.errors import BackendError, LLMStatusError
from swarm.llm.backend import Backend
from swarm.llm.config import EndpointConfig
from swarm.llm.redaction import (
    StreamRedactor,
    redact,
    redact_exception,
    redact_text,
    scrub_logs_for,
)
from swarm.llm.types import ChatChunk, ChatRequest, ChatResponse
from swarm.otel import trace_headers

__all__ = ["HTTPBackend"]

log = logging.getLogger("swarm.llm")

# Worth another attempt: the server may be starting, overloaded or briefly unreachable.
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class _Retry(Exception):
    """One failed attempt that may be retried: why, and how long the server asked us to wait."""

    def __init__(self, reason: str, *, retry_after: float | None = None, final: BaseException):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.final = final


class HTTPBackend(Backend):
    """Talks to `config.base_url` + `/chat/completions`.

    `transport`, `sleep` and `rng` are injectable so tests can swap the network and skip the waits.
    Close it (`await backend.aclose()` or `async with`) to release the connection pool.

    Every secret of the endpoint (`EndpointConfig.secrets`) is scrubbed from the responses and
    stream chunks it returns, from the errors it raises and from httpx's log lines; a password
    in the base URL is sent as Basic auth, so no URL built or logged holds it.
    """

    def __init__(
        self,
        config: EndpointConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.name = config.safe_url
        self.default_model = config.model
        self._transport = transport
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(config.max_concurrency)
        scrub_logs_for(self)

    @property
    def secrets(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.config.secrets()

    def _http(self) -> httpx.AsyncClient:
        # Made on first use so constructing a backend (at import, in config) opens nothing.
        if self._client is None:
            limit = self.config.max_concurrency
            base, query, auth = self.config.url_parts()
            headers = {k: v.get_secret_value() for k, v in self.config.headers.items()}
            self._client = httpx.AsyncClient(
                base_url=base,
                params=httpx.QueryParams(query) if query else None,
                auth=httpx.BasicAuth(*auth) if auth else None,
                transport=self._transport,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
                headers={"Accept": "application/json", **headers},
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # -- one call ----------------------------------------------------------------------------

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        try:
            raw = await self._complete(request, attempt_timeout)
        except BaseException as exc:
            redact_exception(exc, self.secrets)
            raise
        # A model that echoes the key (a prompt-injected one, say) must not hand it on.
        return ChatResponse.from_raw(redact(raw, self.secrets, fields=False))

    async def stream(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        secrets = self.secrets
        redactor = StreamRedactor(secrets)
        chunks = self._stream(request, attempt_timeout)
        try:
            async with aclosing(chunks):  # type: ignore[type-var]
                async for chunk in chunks:
                    yield _redact_chunk(chunk, redactor, secrets)
        except BaseException as exc:
            redact_exception(exc, secrets)
            raise

    async def _complete(
        self, request: ChatRequest, attempt_timeout: float | None
    ) -> dict[str, Any]:
        body = request.body()
        limit = attempt_timeout or self.config.timeout

        async def attempt() -> httpx.Response:
            client = self._http()  # outside the timer: the first call builds the TLS context
            try:
                async with self._slots, asyncio.timeout(limit):
                    response = await client.post(
                        "/chat/completions",
                        json=body,
                        headers=self._headers(),
                        timeout=self._timeout(limit),
                    )
            except TimeoutError as exc:
                raise _Retry(f"no answer within {limit:g}s", final=exc) from exc
            except _RETRY_ERRORS as exc:
                raise _Retry(_describe(exc), final=exc) from exc
            self._check_status(response, request)
            return response

        response = await self._with_retries(attempt, request)
        return self._parse_body(response)

    async def _stream(
        self, request: ChatRequest, attempt_timeout: float | None
    ) -> AsyncGenerator[ChatChunk, None]:
        body = request.body(stream=True)
        limit = attempt_timeout or self.config.timeout
        async with AsyncExitStack() as stack:

            async def attempt() -> httpx.Response:
                # Retried only until the server starts answering: after the first chunk a retry
                # would show the caller the same text twice.
                await stack.enter_async_context(self._slots)
                try:
                    response = await stack.enter_async_context(
                        self._http().stream(
                            "POST",
                            "/chat/completions",
                            json=body,
                            headers={**self._headers(), "Accept": "text/event-stream"},
                            timeout=self._timeout(limit),
                        )
                    )
                    if response.status_code >= 400:
                        await response.aread()
                    self._check_status(response, request)
                    return response
                except _RETRY_ERRORS as exc:
                    await stack.aclose()
                    raise _Retry(_describe(exc), final=exc) from exc
                except BaseException:
                    await stack.aclose()
                    raise

            response = await self._with_retries(attempt, request)
            ctype = response.headers.get("content-type", "")
            if ctype.startswith("application/json"):
                # A server that ignores `stream: true` answers whole; pass it on as chunks.
                await response.aread()
                whole = Backend.stream(_Fixed(self._parse_body(response)), request)
                async with aclosing(whole):  # type: ignore[type-var]
                    async for chunk in whole:
                        yield chunk
                return
            # aclosing: a caller who stops early closes this generator, and with it the reader.
            async with aclosing(_read_events(response, limit, self.name)) as events:
                async for chunk in events:
                    yield chunk

    # -- pieces ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        key = self.config.key()
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        return {**trace_headers(), **auth}  # traceparent only while an exported task runs

    def _timeout(self, limit: float) -> httpx.Timeout:
        return httpx.Timeout(limit, connect=min(limit, self.config.connect_timeout))

    async def _with_retries(
        self, attempt: Callable[[], Awaitable[httpx.Response]], request: ChatRequest
    ) -> httpx.Response:
        retries = self.config.max_retries
        for number in range(retries + 1):
            try:
                return await attempt()
            except _Retry as failure:
                where = f"{self.name}/chat/completions"
                wait = failure.retry_after
                if wait is not None and wait > self.config.max_retry_after:
                    raise self._give_up(failure, where, number, "Retry-After too long") from None
                if number == retries:
                    raise self._give_up(failure, where, number, "no retries left") from None
                delay = self._delay(number, failure.retry_after)
                log.warning(
                    "LLM call to %s failed (%s); retry %d of %d in %.2fs",
                    where,
                    failure.reason,
                    number + 1,
                    retries,
                    delay,
                )
                await self._sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, number: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        # Equal jitter: half the exponential step is fixed, half random, so clients that failed
        # together do not retry together, and no retry comes back instantly.
        step = min(self.config.backoff_cap, self.config.backoff_base * 2**number)
        return step / 2 + self._rng.uniform(0, step / 2)

    def _give_up(self, failure: _Retry, where: str, number: int, why: str) -> BackendError:
        tries = f"{number + 1} attempt{'s' if number else ''}"
        final = failure.final
        if isinstance(final, LLMStatusError):
            return LLMStatusError(
                f"{final} ({why} after {tries})", status_code=final.status_code, body=final.body
            )
        return BackendError(f"LLM call to {where} failed after {tries}: {failure.reason}")

    def _check_status(self, response: httpx.Response, request: ChatRequest) -> None:
        status = response.status_code
        if status < 400:
            return
        text = self._scrub(response.text)
        detail = _server_message(text)
        where = f"{self.name}/chat/completions"
        if status in (401, 403):
            message = (
                f"{where} refused the API key (HTTP {status}): {detail}. Check the key in "
                f"api_key/api_key_env or SWARM_LLM_API_KEY"
            )
        elif status == 404:
            message = (
                f"{where} answered 404 for model {request.model!r}: {detail} "
                f"(is the model name or base_url wrong?)"
            )
        elif status < 500 and status not in _RETRY_STATUS:
            message = (
                f"{where} rejected the request for model {request.model!r} "
                f"(HTTP {status}): {detail}"
            )
        else:
            message = f"{where} failed with HTTP {status}: {detail}"
        error = LLMStatusError(message, status_code=status, body=text[:2000])
        if status in _RETRY_STATUS:
            raise _Retry(f"HTTP {status}", retry_after=_retry_after(response), final=error)
        raise error

    def _parse_body(self, response: httpx.Response) -> dict[str, Any]:
        where = f"{self.name}/chat/completions"
        try:
            raw = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            excerpt = self._scrub(response.text[:200])
            raise BackendError(
                f"{where} answered HTTP {response.status_code} with a body that is not valid JSON "
                f"(content-type {response.headers.get('content-type', 'none')!r}): {excerpt!r}"
            ) from None
        choices = raw.get("choices") if isinstance(raw, dict) else None
        if not isinstance(choices, list) or not choices:
            raise BackendError(
                f"{where} answered JSON without a `choices` list; not a chat completion: "
                f"{self._scrub(json.dumps(raw)[:200])}"
            )
        return raw

    def _scrub(self, text: str) -> str:
        return redact_text(text, self.secrets)


def _redact_chunk(
    chunk: ChatChunk, redactor: StreamRedactor, secrets: tuple[str, ...]
) -> ChatChunk:
    """`chunk` without secrets. Text deltas go through `redactor`, which holds back a tail that
    may be the start of a secret split over chunks and lets it out with the choice's finish."""
    if not secrets:
        return chunk
    raw = chunk.model_dump(mode="json", exclude_none=True)
    for choice in raw.get("choices") or []:
        index = choice.get("index", 0)
        delta = choice.get("delta") or {}
        pieces = [("content", delta)] if isinstance(delta.get("content"), str) else []
        for call in delta.get("tool_calls") or []:
            function = call.get("function") or {}
            if isinstance(function.get("arguments"), str):
                pieces.append((f"call{call.get('index', 0)}", function))
        for name, holder in pieces:
            field = "content" if name == "content" else "arguments"
            holder[field] = redactor.feed((index, name), holder[field])
        if choice.get("finish_reason"):
            rest = redactor.flush((index, "content"))
            if rest:
                delta["content"] = delta.get("content", "") + rest
                choice["delta"] = delta
            for key in redactor.holding:
                if key[0] == index:
                    # A call's arguments cut at the end: give back what is left, scrubbed.
                    tail = redactor.flush(key)
                    delta.setdefault("tool_calls", []).append(
                        {"index": int(key[1][4:]), "function": {"arguments": tail}}
                    )
                    choice["delta"] = delta
    return ChatChunk.model_validate(redact(raw, secrets, fields=False))


class _Fixed(Backend):
    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        return ChatResponse.from_raw(self._raw)


async def _read_events(
    response: httpx.Response, limit: float, where: str
) -> AsyncGenerator[ChatChunk, None]:
    """Server-sent events to chunks. Ends at `data: [DONE]`; ending before it (or a finish
    reason) means the stream was cut off, which is an error, never a silently short answer."""
    seen = 0
    finished = False
    data: list[str] = []
    try:
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue  # an SSE comment, sent as a keep-alive
            if line:
                field, _, value = line.partition(":")
                if field == "data":
                    data.append(value[1:] if value.startswith(" ") else value)
                continue
            if not data:
                continue
            payload, data = "\n".join(data), []
            if payload.strip() == "[DONE]":
                return
            chunk = _parse_event(payload, where, seen)
            seen += 1
            if chunk.finish_reason:
                finished = True
            yield chunk
    except httpx.ReadTimeout:
        raise BackendError(
            f"stream from {where} stalled: no data for {limit:g}s after {seen} chunks"
        ) from None
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise BackendError(
            f"stream from {where} was cut off after {seen} chunks: {_describe(exc)}"
        ) from None
    if data:
        payload = "\n".join(data)
        if payload.strip() == "[DONE]":
            return
        chunk = _parse_event(payload, where, seen)
        seen += 1
        finished = finished or bool(chunk.finish_reason)
        yield chunk
    if not finished:
        raise BackendError(
            f"stream from {where} was cut off after {seen} chunks: it ended without [DONE] "
            f"or a finish_reason"
        )


def _parse_event(payload: str, where: str, seen: int) -> ChatChunk:
    try:
        raw = json.loads(payload)
    except json.JSONDecodeError:
        raise BackendError(
            f"stream from {where} sent an event that is not valid JSON after {seen} chunks: "
            f"{payload[:200]!r}"
        ) from None
    if isinstance(raw, dict) and raw.get("error"):
        raise BackendError(
            f"stream from {where} reported an error after {seen} chunks: "
            f"{_server_message(json.dumps(raw))}"
        )
    if not isinstance(raw, dict):
        raise BackendError(f"stream from {where} sent a non-object event: {payload[:200]!r}")
    return ChatChunk.model_validate(raw)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _server_message(text: str) -> str:
    """The human part of an error body: OpenAI's `error.message`, FastAPI's `detail`, or text."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:300] or "(empty body)"
    if isinstance(raw, dict):
        error = raw.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
        if raw.get("detail"):
            return json.dumps(raw["detail"])[:300]
        if raw.get("message"):
            return str(raw["message"])[:300]
    return text.strip()[:300]


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
