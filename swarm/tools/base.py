"""`@tool`: a function whose type hints become a pydantic model, so a model's tool call is checked
before it runs and the OpenAI function schema comes for free.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from swarm.errors import ConfigError, ToolError

__all__ = ["Tool", "parse_arguments", "tool"]


def parse_arguments(tool: str, arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """A model's tool-call arguments (JSON text, a mapping, or nothing) as a dict; ToolError, worded
    for the model, when they are not one JSON object."""
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ToolError(
                f"arguments for tool {tool!r} are not valid JSON ({exc.msg} at "
                f"position {exc.pos}); send one JSON object"
            ) from None
    if not isinstance(arguments, Mapping):
        raise ToolError(
            f"arguments for tool {tool!r} must be a JSON object, got {type(arguments).__name__}"
        )
    return dict(arguments)


class Tool:
    """A callable with a name, a description and an argument model.

    `await tool(**kwargs)` validates and calls; `tool.spec` is the OpenAI `tools` entry;
    `await tool.invoke('{"json": "text"}')` is what an `LLMAgent` does with a model's call.

    `errors_are_tool_errors`: when True (the built-in tools), any exception the function raises
    becomes a `ToolError` naming the tool and the failure, so it goes back to the model instead
    of failing the task. A plain `@tool` lets its exceptions through, for the agent to catch.
    """

    errors_are_tool_errors: bool = False

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", ""))
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.name):
            raise ConfigError(
                f"tool name {self.name!r} must be 1-64 letters, digits, '_' or '-' "
                f"(the OpenAI function-name rule)"
            )
        summary, params = _parse_doc(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        self.args_model = _args_model(fn, self.name, params)

    @property
    def spec(self) -> dict[str, Any]:
        schema = _untitled(self.args_model.model_json_schema())
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": schema},
        }

    def validate(self, arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
        """The checked keyword arguments, or ToolError naming every problem for the model."""
        arguments = parse_arguments(self.name, arguments)
        try:
            checked = self.args_model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
                for err in exc.errors(include_url=False)
            )
            raise ToolError(f"bad arguments for tool {self.name!r}: {problems}") from None
        return {name: getattr(checked, name) for name in type(checked).model_fields}

    async def __call__(self, **kwargs: Any) -> Any:
        return await self._call(self.validate(kwargs))

    async def invoke(self, arguments: str | Mapping[str, Any] | None) -> str:
        """Validate, call, and render the result as the text a `tool` message carries."""
        return render(await self._call(self.validate(arguments)))

    async def _call(self, checked: dict[str, Any]) -> Any:
        try:
            out = self.fn(**checked)
            if inspect.isawaitable(out):
                out = await out
        except ToolError:
            raise
        except Exception as exc:
            if not self.errors_are_tool_errors:
                raise
            cause = _first_leaf(exc)
            detail = str(cause) or "(no message)"
            raise ToolError(
                f"tool {self.name!r} failed: {type(cause).__name__}: {detail}"
            ) from exc
        return out

    def __repr__(self) -> str:
        return f"<Tool {self.name!r}>"


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Any:
    """Make a `Tool` from a function (sync or async); bare (`@tool`) or with options.

    ```python
    @tool
    async def weather(city: str, days: int = 1) -> dict:
        \"\"\"The forecast for a city.

        Args:
            city: the city's name, in English
            days: how many days ahead (1-7)
        \"\"\"
    ```
    Parameter descriptions come from the docstring's `Args:` section or `Annotated[..., Field()]`.
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description)

    return wrap(fn) if fn is not None else wrap


def _first_leaf(exc: BaseException) -> BaseException:
    """The first real failure inside (nested) exception groups, which say little themselves."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, ensure_ascii=False, default=str)


def _untitled(schema: Any) -> Any:
    """The schema without pydantic's generated `title`s: they only cost the model tokens."""
    if isinstance(schema, list):
        return [_untitled(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            # Keys here are field and model names (a field may be called "title"): keep them.
            out[key] = {name: _untitled(sub) for name, sub in value.items()}
        else:
            out[key] = _untitled(value)
    return out


def _args_model(fn: Callable[..., Any], name: str, docs: dict[str, str]) -> type[BaseModel]:
    try:
        hints = get_type_hints(fn, include_extras=True)
    except (NameError, TypeError) as exc:
        raise ConfigError(f"tool {name!r}: cannot read its type hints ({exc})") from None
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"tool {name!r}: *args/**kwargs cannot be described to a model")
        if param.kind is param.POSITIONAL_ONLY:
            raise ConfigError(f"tool {name!r}: positional-only parameter {param.name!r}")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, Field(default, description=docs.get(param.name)))
    model_name = "".join(part.title() for part in re.split(r"[_-]", name)) + "Args"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def _parse_doc(doc: str) -> tuple[str, dict[str, str]]:
    """The summary (text before `Args:`) and the Google-style per-parameter descriptions."""
    summary, _, rest = ("\n" + doc).partition("\nArgs:")
    params: dict[str, str] = {}
    current = None
    for line in rest.splitlines():
        if line.strip() and not line.startswith((" ", "\t")):
            break  # the next section (Returns:, Raises:)
        match = re.match(r"\s+(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)", line)
        if match and (current is None or len(line) - len(line.lstrip()) <= _indent(rest)):
            current = match.group(1)
            params[current] = match.group(2).strip()
        elif current and line.strip():
            params[current] += " " + line.strip()
    return summary.strip(), params


def _indent(block: str) -> int:
    for line in block.splitlines():
        if line.strip():
            return len(line) - len(line.lstrip())
    return 0
