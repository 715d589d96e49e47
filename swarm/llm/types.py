"""The OpenAI chat-completions wire shapes as pydantic models: what a backend takes and gives back.

Unknown fields are kept (`extra="allow"`) so a server's additions survive a record and a replay.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from swarm.errors import BackendError

__all__ = [
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "Choice",
    "FunctionCall",
    "Message",
    "ToolCall",
    "Usage",
    "json_format",
]

Role = Literal["system", "user", "assistant", "tool", "developer"]
M = TypeVar("M", bound=BaseModel)


def json_format(
    schema: dict[str, Any] | type[BaseModel],
    *,
    style: Literal["openai", "llama.cpp"] = "openai",
    name: str | None = None,
) -> dict[str, Any]:
    """A `response_format` asking for JSON that fits `schema` (a JSON schema or a pydantic model).

    Servers spell it differently: OpenAI and vLLM take `{"type": "json_schema", ...}`;
    llama-cpp-python answers that with HTTP 500 and wants `{"type": "json_object", "schema": ...}`.
    """
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        name = name or schema.__name__
        schema = schema.model_json_schema()
    if style == "llama.cpp":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": name or "answer", "schema": schema}}


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class FunctionCall(_Wire):
    name: str
    arguments: str = "{}"
    """JSON text, exactly as the model wrote it: it may not parse."""


class ToolCall(_Wire):
    id: str = ""
    type: str = "function"
    function: FunctionCall


class Message(_Wire):
    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str | None, tool_calls: list[ToolCall] | None = None) -> Message:
        return cls(role="assistant", content=content, tool_calls=tool_calls or None)

    @classmethod
    def tool(cls, tool_call_id: str, content: str, name: str | None = None) -> Message:
        return cls(role="tool", tool_call_id=tool_call_id, content=content, name=name)


class ChatRequest(_Wire):
    """One chat-completions request body, minus transport concerns (key, URL, timeout)."""

    model: str
    messages: list[Message]
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None

    def body(self, *, stream: bool = False) -> dict[str, Any]:
        """The JSON body to send: unset fields left out so the server applies its defaults."""
        out = self.model_dump(mode="json", exclude_none=True)
        for message in out["messages"]:
            # An assistant turn that only called tools has no text; chat templates (llama.cpp's
            # among them) read `content` unconditionally and fail on null or a missing key.
            message.setdefault("content", "")
        if stream:
            out["stream"] = True
        return out


class Usage(_Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Choice(_Wire):
    index: int = 0
    message: Message
    finish_reason: str | None = None


class ChatResponse(_Wire):
    """A chat completion. `raw` is the body exactly as received, kept for recording and replay."""

    id: str = ""
    model: str = ""
    created: int | None = None
    choices: list[Choice]
    usage: Usage | None = None
    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> ChatResponse:
        response = cls.model_validate(raw)
        response._raw = raw
        return response

    @property
    def raw(self) -> dict[str, Any]:
        """The body as the server sent it (or as this model dumps, for a made-up response)."""
        if self._raw is None:
            self._raw = self.model_dump(mode="json", exclude_none=True)
        return self._raw

    @property
    def message(self) -> Message:
        return self.choices[0].message

    @property
    def content(self) -> str:
        """The first choice's text ("" when the model only called tools)."""
        content = self.message.content
        if isinstance(content, list):
            return "".join(str(part.get("text", "")) for part in content)
        return content or ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        return list(self.message.tool_calls or [])

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason

    def parse_json(self) -> Any:
        """The content parsed as JSON (for `response_format` requests); ValueError if it is not."""
        return json.loads(self.content)

    def parse(self, model: type[M]) -> M:
        """The content as an instance of `model`; BackendError saying how the answer missed it."""
        try:
            return model.model_validate_json(self.content)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(answer)'}: {err['msg']}"
                for err in exc.errors(include_url=False)
            )
            excerpt = self.content[:200]
            raise BackendError(
                f"the model's answer is not a valid {model.__name__}: {problems} "
                f"(answer: {excerpt!r})"
            ) from None


class ChatChunk(_Wire):
    """One server-sent event of a streamed completion (`object: chat.completion.chunk`)."""

    id: str = ""
    model: str = ""
    created: int | None = None
    choices: list[dict[str, Any]] = Field(default_factory=list)
    usage: Usage | None = None

    @property
    def delta(self) -> str:
        """The text this chunk adds to the first choice."""
        if not self.choices:
            return ""
        return (self.choices[0].get("delta") or {}).get("content") or ""

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].get("finish_reason") if self.choices else None
