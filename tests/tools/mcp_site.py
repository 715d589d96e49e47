"""A real MCP server for the tests, run as a subprocess: `python mcp_site.py [stdio|http PORT]`.

Its tools cover what a client must handle: plain answers, structured answers, a tool error, a slow
call (for timeouts and cancellation) and a crash in the middle of a call.
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("site")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return text


@server.tool()
def refuse(reason: str) -> str:
    """Always fails, with the reason given."""
    raise ToolError(f"refused: {reason}")


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "slept"


@server.tool()
def pid() -> int:
    """The server's process id (tests tell a shared server from one per task)."""
    return os.getpid()


@server.tool()
def secret() -> str:
    """A tool no test allows: a model must never see it."""
    return "the vault code"


@server.tool()
def crash() -> str:
    """Kill the server process in the middle of the call."""
    os._exit(3)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
