"""Tools from a real MCP server (tests/tools/mcp_site.py, started as a subprocess): schemas and the
allow-list, errors back to the model, a crash mid-call, timeouts, cancellation, streamable HTTP,
and a replay that never starts the server."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swarm import Context, Swarm, Task, agent
from swarm.agents import AgentRegistry
from swarm.errors import ConfigError, ToolError
from swarm.llm import LLMAgent
from swarm.scenarios import replay_run
from swarm.testing import FakeRouter
from swarm.testing.llm import ScriptedLLM, call_tool
from swarm.tools.mcp import MCPServer, MCPTool, _Connection
from swarm.trace import TraceStore

SITE = [sys.executable, str(Path(__file__).with_name("mcp_site.py"))]
ALLOWED = ["add", "echo", "refuse", "sl*", "crash"]  # not "secret"


def test_a_server_needs_an_allow_list_one_address_and_a_plain_name() -> None:
    with pytest.raises(ConfigError, match="allow_tools"):
        MCPServer("site", SITE, allow_tools=[])
    with pytest.raises(ConfigError, match="exactly one"):
        MCPServer("site", SITE, url="http://127.0.0.1:1/mcp", allow_tools=["*"])
    with pytest.raises(ConfigError, match="exactly one"):
        MCPServer("site", allow_tools=["*"])
    with pytest.raises(ConfigError, match="'a__b'"):
        MCPServer("a__b", SITE, allow_tools=["*"])
    server = MCPServer("site", SITE, allow_tools=["read_*", "stat"])
    assert [server.allows(n) for n in ("read_file", "stat", "status", "write")] == [
        True, True, False, False,
    ]


def test_arguments_are_checked_against_the_servers_schema() -> None:
    server = MCPServer("site", SITE, allow_tools=["*"])
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    }
    add = MCPTool(_Connection(server), {"name": "add.v2", "input_schema": schema})
    assert add.name == "site__add_v2" and add.remote_name == "add.v2"
    assert add.spec["function"]["parameters"] == schema
    assert add.validate('{"a": 1, "b": 2}') == {"a": 1, "b": 2}
    with pytest.raises(ToolError, match=r"a: 'x' is not of type 'integer'"):
        add.validate({"a": "x", "b": 2})
    with pytest.raises(ToolError, match="'b' is a required property"):
        add.validate({"a": 1})
    with pytest.raises(ToolError, match="not valid JSON"):
        add.validate("{a:")
    with pytest.raises(ToolError, match="invalid input schema"):
        MCPTool(_Connection(server), {"name": "bad", "input_schema": {"type": 12}})


class Calculator(LLMAgent):
    name = "calc"
    description = "Sums with a remote calculator"
    examples = ["add two numbers"]
    mcp_servers = [MCPServer("site", SITE, allow_tools=ALLOWED, timeout=2.0)]


SCRIPT: list[Any] = [
    call_tool("site__add", a=2, b=3),
    call_tool("site__refuse", reason="no reason"),
    call_tool("site__add", a="two", b=3),
    call_tool("site__secret"),
    call_tool("site__slow", seconds=30),
    call_tool("site__crash"),
    call_tool("site__echo", text="back again"),
    "2 + 3 = 5",
]


@pytest.mark.slow
async def test_an_llm_agent_uses_mcp_tools_and_a_replay_serves_them_offline(
    store: TraceStore,
) -> None:
    llm = ScriptedLLM(SCRIPT)
    async with Swarm([Calculator()], router=FakeRouter(default="calc"), db=store, llm=llm) as s:
        result = await s.run("add 2 and 3")
        run_id = s.run_id
    assert result.output == "2 + 3 = 5", result.error
    offered = [t["function"]["name"] for t in llm.requests[0].tools or []]
    assert sorted(offered) == [
        "site__add", "site__crash", "site__echo", "site__refuse", "site__slow",
    ]
    add_spec = next(t for t in llm.requests[0].tools or [] if t["function"]["name"] == "site__add")
    assert add_spec["function"]["parameters"]["required"] == ["a", "b"]
    answers = [m.content for m in llm.requests[-1].messages if m.role == "tool"]
    assert answers[0] == '{"result": 5}'
    assert answers[1].startswith("error: MCP tool site__refuse failed")
    assert "no reason" in answers[1]
    assert answers[2].startswith("error: bad arguments for tool 'site__add': a: 'two'")
    assert answers[3].startswith("error: there is no tool named 'site__secret'")
    assert answers[4] == "error: MCP server 'site': tool 'slow' timed out after 2s"
    assert answers[5].startswith("error: MCP server 'site' failed during tool 'crash'"), answers[5]
    assert answers[6] == '{"result": "back again"}'  # the server was started again after the crash

    assert run_id is not None
    spans = store.spans(run_id=run_id, kind="tool")
    assert [(sp["name"], sp["status"]) for sp in spans] == [
        ("mcp:site:list_tools", "ok"),
        ("site__add", "ok"),
        ("site__refuse", "error"),
        ("site__add", "error"),
        ("site__slow", "error"),
        ("site__crash", "error"),
        ("site__echo", "ok"),
    ]
    assert spans[1]["attributes"]["arguments"] == {"a": 2, "b": 3}
    assert spans[1]["attributes"]["output"] == {"result": 5}

    # The replay's server cannot start: every answer must come from the recording.
    class Offline(Calculator):
        mcp_servers = [MCPServer("site", "/nonexistent/mcp-server", allow_tools=ALLOWED)]

    outcome = await replay_run(
        store, run_id, agents=AgentRegistry([Offline()]), router=FakeRouter(default="calc")
    )
    assert outcome.diff.changes == [] and outcome.tools_served == 7
    assert outcome.records[0].output == "2 + 3 = 5"


@pytest.mark.slow
async def test_an_agent_lists_tools_cancels_a_call_and_keeps_the_connection() -> None:
    server = MCPServer("site", SITE, allow_tools=["add", "slow"], timeout=60)

    @agent
    async def waiter(task: Task, ctx: Context) -> dict[str, Any]:
        """Starts a long call, gives up on it, then adds."""
        async with server.tools(ctx) as tools:
            by_name = {t.name: t for t in tools}
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1.0):
                    await ctx.tool(by_name["site__slow"], seconds=30)
            waited = time.monotonic() - started
            total = await ctx.tool(by_name["site__add"], a=40, b=2)
        return {"names": sorted(by_name), "waited": waited, "total": total}

    async with Swarm([waiter], router=FakeRouter(default="waiter"), db=None) as s:
        result = await s.run("wait")
    assert result.output is not None, result.error
    assert result.output["names"] == ["site__add", "site__slow"]
    assert result.output["waited"] < 5
    assert result.output["total"] == {"result": 42}


@pytest.mark.slow
async def test_tasks_inside_async_with_server_share_one_server_process() -> None:
    server = MCPServer("site", SITE, allow_tools=["pid"])

    @agent
    async def asker(task: Task, ctx: Context) -> int:
        """Asks the server for its process id."""
        async with server.tools(ctx) as tools:
            answer = await ctx.tool(tools[0])
        return int(answer["result"])

    async with Swarm([asker], router=FakeRouter(default="asker"), db=None) as s:
        async with server:
            shared = [(await s.run(f"pid {i}")).output for i in range(3)]
        alone = [(await s.run(f"pid {i}")).output for i in range(2)]
    assert len(set(shared)) == 1, shared
    assert len(set(alone)) == 2 and not set(alone) & set(shared)
    with pytest.raises(ProcessLookupError):  # leaving the block stopped the shared server
        os.kill(shared[0], 0)


@pytest.mark.slow
def test_a_typo_in_the_allow_list_names_the_tools_the_server_has() -> None:
    @agent
    async def typo(task: Task, ctx: Context) -> None:
        """Lists the tools of a server with a mistyped allow-list."""
        server = MCPServer("site", SITE, allow_tools=["ad"])
        async with server.tools(ctx):
            pass

    async def main() -> Any:
        async with Swarm([typo], router=FakeRouter(default="typo"), db=None) as s:
            return await s.run("list")

    result = asyncio.run(main())
    assert result.error is not None
    assert "has no tool 'ad'" in result.error and "'add'" in result.error


async def test_a_server_that_cannot_start_is_a_tool_error() -> None:
    server = MCPServer("gone", "/nonexistent/mcp-server", allow_tools=["*"], connect_timeout=5)

    @agent
    async def lister(task: Task, ctx: Context) -> str:
        """Lists the tools of a server that is not there."""
        try:
            async with server.tools(ctx):
                return "listed"
        except ToolError as exc:
            return str(exc)

    async with Swarm([lister], router=FakeRouter(default="lister"), db=None) as s:
        result = await s.run("list")
    assert result.output.startswith("MCP server 'gone' did not start: ")


@pytest.fixture
def http_site() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [*SITE, "http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
async def test_a_streamable_http_server(http_site: str) -> None:
    server = MCPServer("web", url=http_site, allow_tools=["echo"])

    @agent
    async def caller(task: Task, ctx: Context) -> Any:
        """Echoes through the HTTP server."""
        async with server.tools(ctx) as tools:
            return [[t.name for t in tools], await ctx.tool(tools[0], text=task.text)]

    async with Swarm([caller], router=FakeRouter(default="caller"), db=None) as s:
        result = await s.run("over http")
    assert result.error is None, result.error
    assert result.output == [["web__echo"], {"result": "over http"}]
