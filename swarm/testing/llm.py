"""`ScriptedLLM`, an LLM backend for unit tests: the replies are given as a list or a function,
and every request it got is kept for assertions. Offline, instant, deterministic.
"""

from __future__ import annotations

import inspect
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from swarm.errors import BackendError
from swarm.llm.backend import Backend
from swarm.llm.types import ChatChunk, ChatRequest, ChatResponse, Message

__all__ = ["Reply", "ScriptedLLM", "call_tool"]

Reply = str | Message | ChatResponse | Mapping[str, Any] | BaseException
"""A text; a `Message`; a whole `ChatResponse`; a dict (a message, or a raw response with
`choices`); or an exception to raise, to test how an agent copes with a failing backend."""


class ScriptedLLM(Backend):
    """Answers from a script.

    ```python
    llm = ScriptedLLM([call_tool("weather", city="Oslo"), "It will rain."])
    llm = ScriptedLLM(lambda request: request.messages[-1].content.upper())
    ```

    A list is served in order (running past its end is a `BackendError`); a function (sync or
    async) gets the `ChatRequest` and returns a reply. `requests` holds every request received.
    Give it to a swarm directly (`Swarm(llm=ScriptedLLM([...]))`) or wrap it: `LLM(scripted)`.
    """

    name = "scripted"

    def __init__(
        self,
        replies: Sequence[Reply] | Callable[[ChatRequest], Reply | Awaitable[Reply]],
        *,
        model: str = "scripted",
    ) -> None:
        self.default_model = model
        self.requests: list[ChatRequest] = []
        self._script = None if callable(replies) else list(replies)
        self._fn = replies if callable(replies) else None
        self._ids = itertools.count(1)

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        self.requests.append(request)
        n = len(self.requests)
        if self._fn is not None:
            reply = self._fn(request)
            if inspect.isawaitable(reply):
                reply = await reply
        elif self._script is not None and n <= len(self._script):
            reply = self._script[n - 1]
        else:
            count = len(self._script or [])
            raise BackendError(
                f"ScriptedLLM has {count} scripted replies and got request {n} "
                f"(last message: {_excerpt(request)!r})"
            )
        if isinstance(reply, BaseException):
            raise reply
        return self._response(reply, request, n)

    async def stream(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        response = await self.complete(request, attempt_timeout=attempt_timeout)
        raw = response.raw
        head = {"id": raw["id"], "object": "chat.completion.chunk", "model": raw["model"]}
        choice = raw["choices"][0]
        message = choice["message"]
        # Word by word, so consumers of a stream see more than one chunk.
        words = (message.get("content") or "").split(" ")
        for i, word in enumerate(words if message.get("content") else []):
            delta: dict[str, Any] = {"content": word if i == 0 else " " + word}
            if i == 0:
                delta["role"] = "assistant"
            yield ChatChunk.model_validate({**head, "choices": [{"index": 0, "delta": delta}]})
        if message.get("tool_calls"):
            calls = [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]
            delta = {"role": "assistant", "tool_calls": calls}
            yield ChatChunk.model_validate({**head, "choices": [{"index": 0, "delta": delta}]})
        end = {"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}
        yield ChatChunk.model_validate({**head, "choices": [end], "usage": raw["usage"]})

    def _response(self, reply: Reply, request: ChatRequest, n: int) -> ChatResponse:
        if isinstance(reply, ChatResponse):
            return reply
        if isinstance(reply, Mapping) and "choices" in reply:
            return ChatResponse.from_raw(dict(reply))
        if isinstance(reply, str):
            message: dict[str, Any] = {"role": "assistant", "content": reply}
        elif isinstance(reply, Message):
            message = reply.model_dump(mode="json", exclude_none=True)
        elif isinstance(reply, Mapping):
            message = {"role": "assistant", **reply}
        else:
            raise BackendError(f"ScriptedLLM cannot reply with {type(reply).__name__}: {reply!r}")
        prompt = sum(len(str(m.content or "").split()) for m in request.messages)
        completion = len(str(message.get("content") or "").split())
        raw = {
            "id": f"scripted-{n}",
            "object": "chat.completion",
            "created": 0,
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        return ChatResponse.from_raw(raw)


def call_tool(
    name: str, arguments: str | Mapping[str, Any] | None = None, /, **kwargs: Any
) -> dict[str, Any]:
    """A scripted assistant message calling tool `name`.

    `arguments` as a string is sent verbatim (to script malformed JSON); otherwise the mapping
    and keyword arguments are encoded as JSON.
    """
    if isinstance(arguments, str):
        encoded = arguments
    else:
        encoded = json.dumps({**(arguments or {}), **kwargs})
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{name}",
                "type": "function",
                "function": {"name": name, "arguments": encoded},
            }
        ],
    }


def _excerpt(request: ChatRequest) -> str:
    if not request.messages:
        return ""
    text = " ".join(str(request.messages[-1].content or "").split())
    return text if len(text) <= 60 else text[:57] + "..."
