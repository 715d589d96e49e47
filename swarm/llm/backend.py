"""The one-method interface every LLM backend implements (HTTP, replay, scripted), like an httpx
transport: `complete(request) -> response`, plus `stream(request)` yielding chunks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol, runtime_checkable

from swarm.llm.types import ChatChunk, ChatRequest, ChatResponse

__all__ = ["Backend", "LLMBackend", "assemble_stream", "chunks_from_response"]


@runtime_checkable
class LLMBackend(Protocol):
    name: str
    """Where calls go, safe to record (no credentials): a URL, "replay", "scripted"."""

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        ...

    def stream(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        """An async generator of chunks; the caller `aclose()`s it if it stops early."""
        ...

    async def aclose(self) -> None: ...


class Backend:
    """A base for backends: a stream made from `complete`, a no-op close.

    Subclasses write `complete`, and `stream` when they can do better than one chunk. A backend
    knows nothing of the client above it: `Swarm(llm=backend)` wraps it in an `LLM` itself.
    """

    name: str = "backend"
    default_model: str = "default"
    secrets: tuple[str, ...] = ()
    """Strings to scrub from anything recorded (the API key)."""

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        raise NotImplementedError

    async def stream(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        response = await self.complete(request, attempt_timeout=attempt_timeout)
        for raw in chunks_from_response(response.raw):
            yield ChatChunk.model_validate(raw)

    def endpoint(self, request: ChatRequest) -> str:
        """Where `request` goes, for the record: `name` unless the backend routes by model."""
        return self.name

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> Backend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def chunks_from_response(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole response as the chunks a streaming server would have sent (content, then finish)."""
    head = {
        "id": raw.get("id", ""),
        "object": "chat.completion.chunk",
        "model": raw.get("model", ""),
    }
    if raw.get("created") is not None:
        head["created"] = raw["created"]
    out: list[dict[str, Any]] = []
    for choice in raw.get("choices", []):
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": message.get("role", "assistant")}
        if message.get("content") is not None:
            delta["content"] = message["content"]
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {"index": i, **call} for i, call in enumerate(message["tool_calls"])
            ]
        index = choice.get("index", 0)
        out.append({**head, "choices": [{"index": index, "delta": delta, "finish_reason": None}]})
        finish = {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}
        out.append({**head, "choices": [finish]})
    if raw.get("usage") is not None:
        out.append({**head, "choices": [], "usage": raw["usage"]})
    return out


def assemble_stream(chunks: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The response a stream of raw chunks adds up to, in the non-streaming body's shape."""
    head: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for chunk in chunks:
        for key in ("id", "model", "created", "system_fingerprint"):
            if chunk.get(key) is not None and key not in head:
                head[key] = chunk[key]
        if chunk.get("usage") is not None:
            usage = chunk["usage"]
        for part in chunk.get("choices") or []:
            index = part.get("index", 0)
            choice = choices.setdefault(
                index,
                {"index": index, "role": "assistant", "text": [], "calls": {}, "finish": None},
            )
            delta = part.get("delta") or {}
            if delta.get("role"):
                choice["role"] = delta["role"]
            if delta.get("content"):
                choice["text"].append(delta["content"])
            for call in delta.get("tool_calls") or []:
                _merge_call(choice["calls"], call)
            if part.get("finish_reason"):
                choice["finish"] = part["finish_reason"]
    out: dict[str, Any] = {"id": head.get("id", ""), "object": "chat.completion", **head}
    out["choices"] = [_choice(choices[i]) for i in sorted(choices)]
    if usage is not None:
        out["usage"] = usage
    return out


def _merge_call(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    # Servers send a call's id and name once, then its arguments in pieces, keyed by `index`.
    index = delta.get("index", len(calls))
    call = calls.setdefault(index, {"id": "", "type": "function", "name": "", "arguments": []})
    if delta.get("id"):
        call["id"] = delta["id"]
    function = delta.get("function") or {}
    if function.get("name"):
        call["name"] = function["name"]
    if function.get("arguments"):
        call["arguments"].append(function["arguments"])


def _choice(choice: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": choice["role"], "content": "".join(choice["text"]) or None}
    if choice["calls"]:
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": call["type"],
                "function": {"name": call["name"], "arguments": "".join(call["arguments"])},
            }
            for _, call in sorted(choice["calls"].items())
        ]
    return {"index": choice["index"], "message": message, "finish_reason": choice["finish"]}


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, non-ASCII kept (for hashing)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
