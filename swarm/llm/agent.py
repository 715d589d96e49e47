"""`LLMAgent`: the common agent in a few lines: a system prompt, tools, and a loop that runs the
model's tool calls and feeds the results back until it answers or runs out of steps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from swarm.agents.base import Agent
from swarm.errors import AgentError, ToolError
from swarm.llm.client import LLM
from swarm.llm.types import ChatResponse, Message, ToolCall
from swarm.tools.base import Tool, render
from swarm.tools.mcp import MCPServer, mcp_tools

if TYPE_CHECKING:
    from swarm.context import Context
    from swarm.models import Task

__all__ = ["LLMAgent"]


class LLMAgent(Agent):
    """Subclass it and set the attributes; `run` is written for you.

    ```python
    class Weather(LLMAgent):
        name = "weather"
        description = "Forecasts"
        examples = ["will it rain in Oslo?"]
        system = "You answer weather questions. Use the tools."
        tools = [forecast]
    ```

    A tool call the model gets wrong (unknown tool, arguments that are not JSON or do not fit the
    tool's schema, a guard refusing them) goes back to the model as the tool's answer, so it can
    correct itself; it does not fail the task. `tool_choice` applies to the first step only (a
    forced call on every step would never let the model answer). Uses `ctx.llm`, or `llm` when set.
    """

    system: str = ""
    tools: Sequence[Tool] = ()
    mcp_servers: Sequence[MCPServer] = ()
    """MCP servers whose allowed tools join `tools`, named `{server}__{tool}` (swarm.tools.mcp)."""
    model: str | None = None
    max_steps: int = 8
    """Model calls per task; reaching it without an answer fails the task."""
    temperature: float | None = None
    max_tokens: int | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    stream: bool = False
    """Ask for streamed answers: each text chunk is then a `token` event of the task
    (`Swarm.stream`, `swarm serve`); the result is the same."""
    llm: Any = None

    def messages(self, task: Task) -> list[Message]:
        """The conversation the model starts from; override to add context or history."""
        out = [Message.system(self.system)] if self.system else []
        out.append(Message.user(task.text))
        return out

    def answer(self, response: ChatResponse, task: Task) -> Any:
        """What the task returns once the model stops calling tools; the text by default."""
        return response.content

    async def run(self, task: Task, ctx: Context) -> Any:
        async with AsyncExitStack() as stack:
            tools: dict[str, Tool] = {t.name: t for t in self.tools}
            if self.mcp_servers:
                remote = await stack.enter_async_context(mcp_tools(ctx, self.mcp_servers))
                clash = sorted(set(remote) & set(tools))
                if clash:
                    raise AgentError(f"LLM agent {self.name!r}: MCP tools {clash} shadow its own")
                tools.update(remote)
            return await self._loop(task, ctx, tools)

    async def _loop(self, task: Task, ctx: Context, tools: dict[str, Tool]) -> Any:
        llm = self._llm(ctx)
        messages = self.messages(task)
        choice = self.tool_choice
        for step in range(self.max_steps):
            options: dict[str, Any] = {
                "model": self.model,
                "tools": list(tools.values()) or None,
                "tool_choice": choice if tools else None,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                "response_format": self.response_format,
            }
            if self.stream:
                response = await llm.stream(messages, **options).collect()
            else:
                response = await llm.chat(messages, **options)
            choice = None
            calls = [
                call if call.id else call.model_copy(update={"id": f"call_{step}_{i}"})
                for i, call in enumerate(response.tool_calls)
            ]
            if not calls:
                return self.answer(response, task)
            messages.append(Message.assistant(response.message.content, calls))
            for call in calls:
                text = await self.call_tool(call, tools, ctx)
                messages.append(Message.tool(call.id, text, name=call.function.name))
        raise AgentError(
            f"LLM agent {self.name!r} reached max_steps={self.max_steps} without a final answer"
        )

    async def call_tool(self, call: ToolCall, tools: dict[str, Tool], ctx: Context) -> str:
        """Run one call and return the text the model sees: the result, or what went wrong."""
        name = call.function.name
        tool = tools.get(name)
        if tool is None:
            return f"error: there is no tool named {name!r}; available tools: {sorted(tools)}"
        try:
            arguments = json.loads(call.function.arguments or "{}")
        except json.JSONDecodeError as exc:
            return (
                f"error: arguments for tool {name!r} are not valid JSON ({exc.msg}); "
                f"send one JSON object"
            )
        if not isinstance(arguments, dict):
            return f"error: arguments for tool {name!r} must be a JSON object"
        try:
            # Validation runs inside the tool span, so a refused call is in the trace too.
            return render(await ctx.tool(tool, **arguments))
        except ToolError as exc:
            return f"error: {exc}"

    def _llm(self, ctx: Context) -> Any:
        if self.llm is not None:
            # The agent's own client (or a bare backend, wrapped), recording into this task.
            own = self.llm if isinstance(self.llm, LLM) else LLM(self.llm)
            return own.bind(ctx)
        if ctx.llm is None:
            raise AgentError(
                f"LLM agent {self.name!r} has no LLM: give the swarm one (Swarm(llm=LLM(...))) "
                f"or set `llm` on the agent"
            )
        return ctx.llm
