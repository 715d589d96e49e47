"""Tools agents and models call: `@tool` builds the argument schema from type hints; the built-in
HTTP, file and script tools each guard what they touch; `MCPServer` brings in an MCP server's tools.
"""

from swarm.tools.base import Tool, tool
from swarm.tools.files import FileTool
from swarm.tools.http import HttpTool
from swarm.tools.mcp import MCPServer, MCPTool, mcp_tools
from swarm.tools.scripts import ScriptTool

__all__ = [
    "FileTool",
    "HttpTool",
    "MCPServer",
    "MCPTool",
    "ScriptTool",
    "Tool",
    "mcp_tools",
    "tool",
]
