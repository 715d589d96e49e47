"""`@tool`: the schema from type hints and docstrings, validation that names every problem, and
calls through `ctx.tool` recorded as spans."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from swarm.clock import SystemClock
from swarm.context import Context, Span
from swarm.errors import ConfigError, ToolError
from swarm.models import Task
from swarm.tools import Tool, tool


class Address(BaseModel):
    street: str
    zip: str


@tool
async def ship(
    item: str,
    quantity: Annotated[int, Field(ge=1, le=10)] = 1,
    speed: Literal["standard", "express"] = "standard",
    to: Address | None = None,
) -> dict[str, Any]:
    """Ship an item to a customer.

    Args:
        item: the product's SKU
        quantity: how many; the warehouse
            ships at most ten at once
    """
    return {"item": item, "quantity": quantity, "speed": speed, "to": to}


def test_schema_from_hints_and_docstring() -> None:
    spec = ship.spec
    assert spec["type"] == "function"
    function = spec["function"]
    assert function["name"] == "ship"
    assert function["description"] == "Ship an item to a customer."
    params = function["parameters"]
    assert params["type"] == "object" and params["required"] == ["item"]
    props = params["properties"]
    assert props["item"] == {"type": "string", "description": "the product's SKU"}
    assert props["quantity"]["maximum"] == 10 and props["quantity"]["default"] == 1
    assert props["quantity"]["description"] == (
        "how many; the warehouse ships at most ten at once"
    )
    assert props["speed"]["enum"] == ["standard", "express"]
    assert params["additionalProperties"] is False
    assert "Address" in params["$defs"]


async def test_call_validates_and_converts() -> None:
    out = await ship(item="sku-1", quantity="3", to={"street": "Main 1", "zip": "0150"})
    assert out["quantity"] == 3 and isinstance(out["to"], Address)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"quantity": 2}', "item: Field required"),
        ('{"item": "a", "quantity": 11}', "quantity: Input should be less than or equal to 10"),
        ('{"item": "a", "speed": "warp"}', "speed: Input should be 'standard' or 'express'"),
        ('{"item": "a", "to": {"street": "x"}}', "to.zip: Field required"),
        ('{"item": "a", "rm": "-rf"}', "rm: Extra inputs are not permitted"),
        ('{"item": ', "not valid JSON"),
        ('"sku-1"', "must be a JSON object"),
    ],
)
async def test_bad_arguments_become_a_readable_tool_error(arguments: str, expected: str) -> None:
    with pytest.raises(ToolError, match="ship") as caught:
        await ship.invoke(arguments)
    assert expected in str(caught.value)


async def test_invoke_renders_the_result_as_text() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    assert await add.invoke('{"a": 2, "b": 3}') == "5"
    assert await ship.invoke({"item": "x"}) == (
        '{"item": "x", "quantity": 1, "speed": "standard", "to": null}'
    )


def test_names_and_signatures_that_cannot_be_tools() -> None:
    with pytest.raises(ConfigError, match="must be 1-64"):
        Tool(lambda: None, name="has space")
    with pytest.raises(ConfigError, match=r"\*args"):
        tool(lambda *args: None, name="star")

    def positional(x: int, /) -> int:
        return x

    with pytest.raises(ConfigError, match="positional-only"):
        tool(positional)


def test_options_override_name_and_description() -> None:
    @tool(name="lookup-order", description="Find an order.")
    def lookup(order_id: str) -> str:
        """Ignored."""
        return order_id

    assert lookup.name == "lookup-order"
    assert lookup.spec["function"]["description"] == "Find an order."


class _Sink:
    def __init__(self) -> None:
        self.spans: list[Span] = []

    def record_span(self, span: Span) -> None:
        self.spans.append(span)


class _NoDelegation:
    async def delegate(self, parent: Task, child: Task) -> Any:
        raise AssertionError


async def test_through_ctx_tool_it_is_a_span_named_after_the_tool() -> None:
    sink = _Sink()
    ctx = Context(Task(text="t"), agent="a", attempt=1, scheduler=_NoDelegation(), sink=sink,
                  clock=SystemClock())
    await ctx.tool(ship, item="sku-9")
    with pytest.raises(ToolError):
        await ctx.tool(ship, item="sku-9", quantity=99)
    ok, bad = sink.spans
    assert ok.kind == "tool" and ok.name == "ship"
    assert ok.attributes["arguments"] == {"item": "sku-9"}
    assert bad.status == "error" and "quantity" in (bad.error or "")


def test_a_field_called_title_survives_title_stripping() -> None:
    @tool
    def publish(title: str, body: str = "") -> str:
        """Publish a post."""
        return title

    props = publish.spec["function"]["parameters"]["properties"]
    assert props == {"title": {"type": "string"}, "body": {"type": "string", "default": ""}}
