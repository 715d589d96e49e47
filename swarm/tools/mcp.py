"""Tools from Model Context Protocol servers: a server's tools, fenced by an allow-list and named
`{server}__{tool}`, called like any other tool (a `tool` span each, served again by a replay).

Needs the optional extra `swarm-dispatch[mcp]` (the `mcp` package) once a server is reached.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import jsonschema

from swarm.errors import ConfigError, ToolError
from swarm.tools.base import Tool, parse_arguments

if TYPE_CHECKING:
    from swarm.context import Context

__all__ = ["MCPServer", "MCPTool", "mcp_tools"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CONNECTION_CLOSED = -32000  # mcp_types.CONNECTION_CLOSED: the transport is gone
_SEP = "__"


class MCPServer:
    """Where an MCP server is and which of its tools a model may call.

    Give either `command` (a program started per task, spoken to over stdio; `args`, `env` and
    `cwd` as for a subprocess) or `url` (streamable HTTP; `headers` sent with every request).

    - `allow_tools`: the server's tool names (without the prefix) or shell-style patterns
      (`read_*`; `["*"]` for all). Required: nothing is exposed by default. An exact name the
      server does not have is an error when the tools are listed, so a typo does not pass quietly.
    - `timeout` (seconds) bounds each call; `connect_timeout` bounds starting and greeting the
      server. A timeout, a tool's own error and a server that dies mid-call all become a
      `ToolError`, which an `LLMAgent` hands back to the model; the next call starts the server
      again.
    - A stdio server starts per task (when first needed) and stops when the task ends; inside
      `async with server:` all tasks share one connection (one process), closed by the block.

    Raises `ConfigError` for a bad name, neither or both of `command` and `url`, or no allow-list.
    """

    def __init__(
        self,
        name: str,
        command: str | Sequence[str] | None = None,
        *,
        url: str | None = None,
        allow_tools: Iterable[str],
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 30.0,
    ) -> None:
        if not _NAME.fullmatch(name) or _SEP in name:
            raise ConfigError(
                f"MCP server name {name!r} must be 1-64 letters, digits, '_' or '-', "
                f"without {_SEP!r} (it prefixes the tool names)"
            )
        if (command is None) == (url is None):
            raise ConfigError(f"MCP server {name!r}: give exactly one of `command` or `url`")
        self.name = name
        self.allow_tools = tuple(allow_tools)
        if not self.allow_tools:
            raise ConfigError(
                f"MCP server {name!r} needs `allow_tools` (tool names or patterns; ['*'] for all)"
            )
        if isinstance(command, str):
            command = [command]
        self.command = [*command, *args] if command is not None else None
        if self.command is not None and not self.command:
            raise ConfigError(f"MCP server {name!r}: `command` is empty")
        self.url = url
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._shared: _Connection | None = None

    def allows(self, tool_name: str) -> bool:
        return any(fnmatch.fnmatchcase(tool_name, pattern) for pattern in self.allow_tools)

    def tools(self, ctx: Context) -> AbstractAsyncContextManager[list[MCPTool]]:
        """`async with server.tools(ctx) as tools`: the allowed tools, for one task.

        The listing is itself a `tool` span (`mcp:{server}:list_tools`), so a replay serves it
        and never starts the server; a live call connects on first use, and leaving the block
        closes the connection (stopping a stdio server).
        """
        return _task_tools(self, ctx)

    async def __aenter__(self) -> MCPServer:
        """Inside `async with server:`, every task shares one connection (one server process)
        instead of starting its own; leaving the block closes it."""
        if self._shared is not None:
            raise ConfigError(f"MCP server {self.name!r} is already open")
        self._shared = _Connection(self, shared=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.aclose()
            shared.release()

    def __repr__(self) -> str:
        where = self.url if self.url is not None else " ".join(self.command or ())
        return f"<MCPServer {self.name!r} {where}>"


class MCPTool(Tool):
    """One tool of an MCP server, with the server's JSON schema for its arguments.

    Arguments are checked against that schema (jsonschema) before the call; the answer is the
    server's structured content when it sends some, else its text content joined by newlines.
    """

    errors_are_tool_errors = True

    def __init__(self, connection: _Connection, listed: Mapping[str, Any]) -> None:
        server = connection.server
        self.remote_name = str(listed["name"])
        self.name = f"{server.name}{_SEP}{_clean(self.remote_name)}"[:64]
        self.description = str(listed.get("description") or "")
        self.schema: dict[str, Any] = dict(listed.get("input_schema") or {"type": "object"})
        self.schema.setdefault("type", "object")
        self._connection = connection
        self.fn = self._remote
        try:
            cls = jsonschema.validators.validator_for(self.schema)
            cls.check_schema(self.schema)
        except jsonschema.SchemaError as exc:
            raise ToolError(
                f"MCP server {server.name!r} gave tool {self.remote_name!r} an invalid input "
                f"schema: {exc.message}"
            ) from None
        self._validator = cls(self.schema)

    @property
    def spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.schema,
            },
        }

    def validate(self, arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
        checked = parse_arguments(self.name, arguments)
        problems = sorted(self._validator.iter_errors(checked), key=lambda e: list(e.path))
        if problems:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in err.path) or '(arguments)'}: {err.message}"
                for err in problems
            )
            raise ToolError(f"bad arguments for tool {self.name!r}: {detail}")
        return checked

    async def _remote(self, **arguments: Any) -> Any:
        return await self._connection.call(self.remote_name, arguments)


def mcp_tools(
    ctx: Context, servers: Iterable[MCPServer]
) -> AbstractAsyncContextManager[dict[str, MCPTool]]:
    """`async with mcp_tools(ctx, servers) as tools`: every allowed tool of every server, by
    prefixed name, for one task (see `MCPServer.tools`). Raises `ConfigError` when two servers
    share a name.
    """
    return _many_tools(list(servers), ctx)


@asynccontextmanager
async def _many_tools(servers: list[MCPServer], ctx: Context) -> AsyncIterator[dict[str, MCPTool]]:
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise ConfigError(f"MCP server names must be unique, got {names}")
    connections = [server._shared or _Connection(server) for server in servers]
    try:
        found: dict[str, MCPTool] = {}
        for connection in connections:
            for listed in await _list(connection, ctx):
                one = MCPTool(connection, listed)
                if one.name in found:
                    raise ConfigError(
                        f"MCP tools {found[one.name].remote_name!r} and {one.remote_name!r} of "
                        f"server {connection.server.name!r} both become {one.name!r}; "
                        f"allow only one of them"
                    )
                found[one.name] = one
        yield found
    finally:
        for connection in connections:
            if not connection.shared:  # a shared one lives as long as its `async with` block
                await connection.aclose()
                connection.release()


@asynccontextmanager
async def _task_tools(server: MCPServer, ctx: Context) -> AsyncIterator[list[MCPTool]]:
    async with _many_tools([server], ctx) as found:
        yield list(found.values())


class _Lister:
    """The `tools/list` request as a callable `Context.tool` can record and a replay can serve."""

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.name = f"mcp:{connection.server.name}:list_tools"

    async def __call__(self) -> list[dict[str, Any]]:
        return await self.connection.list_tools()


async def _list(connection: _Connection, ctx: Context) -> list[dict[str, Any]]:
    server = connection.server
    listed = await ctx.tool(_Lister(connection))
    if not isinstance(listed, list):
        raise ToolError(f"MCP server {server.name!r}: the tool listing is not a list")
    have = {str(item.get("name")) for item in listed if isinstance(item, dict)}
    missing = [
        p for p in server.allow_tools if not any(c in p for c in "*?[") and p not in have
    ]
    if missing:
        raise ConfigError(
            f"MCP server {server.name!r} has no tool {missing[0]!r} (allow_tools); "
            f"it has: {sorted(have)}"
        )
    return [item for item in listed if isinstance(item, dict) and server.allows(item["name"])]


class _Connection:
    """One live session with a server for one task.

    The session lives in a task of its own (the `mcp` client's transports are anyio task groups,
    which must be left by the task that entered them), so calls may come from any task; `aclose`
    ends it. A connection that failed is dropped and made again on the next call. A `shared` one
    (`async with server:`) serves every task and is closed only by its block.
    """

    def __init__(self, server: MCPServer, *, shared: bool = False) -> None:
        self.server = server
        self.shared = shared
        self._session: Any = None
        self._owner: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._failure: BaseException | None = None
        self._stderr: Any = None
        self._lock = asyncio.Lock()

    async def list_tools(self) -> list[dict[str, Any]]:
        session = await self._ready()
        try:
            async with asyncio.timeout(self.server.timeout):
                result = await session.list_tools()
        except Exception as exc:
            raise await self._failed("listing tools", exc) from None
        return [
            {
                "name": t.name,
                "description": t.description or "",
                "input_schema": t.input_schema,
            }
            for t in result.tools
        ]

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        session = await self._ready()
        try:
            async with asyncio.timeout(self.server.timeout):
                result = await session.call_tool(name, arguments)
        except Exception as exc:
            raise await self._failed(f"tool {name!r}", exc) from None
        text = "\n".join(_content_text(block) for block in result.content)
        if result.is_error:
            raise ToolError(f"MCP tool {self.server.name}{_SEP}{name} failed: {text}")
        if result.structured_content is not None:
            return result.structured_content
        return text

    async def _ready(self) -> Any:
        async with self._lock:
            if self._session is not None and self._owner is not None and not self._owner.done():
                return self._session
            await self.aclose()
            self._closing = asyncio.Event()
            self._failure = None
            ready = asyncio.Event()
            self._owner = asyncio.create_task(self._own(ready), name=f"mcp:{self.server.name}")
            waiter = asyncio.create_task(ready.wait())
            try:
                await asyncio.wait(
                    {self._owner, waiter},
                    timeout=self.server.connect_timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                waiter.cancel()
            if self._session is None:
                why = (
                    f"{type(self._failure).__name__}: {self._failure}"
                    if self._failure is not None
                    else f"no answer within {self.server.connect_timeout:g}s"
                )
                detail = self._stderr_tail()
                await self.aclose()
                raise ToolError(f"MCP server {self.server.name!r} did not start: {why}{detail}")
            return self._session

    async def _own(self, ready: asyncio.Event) -> None:
        from mcp import ClientSession

        try:
            async with self._transport() as streams, ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                self._session = s
                ready.set()
                await self._closing.wait()
        except Exception as exc:  # kept for the caller's error message, never lost
            self._failure = _leaf(exc)
        finally:
            self._session = None

    def _transport(self) -> AbstractAsyncContextManager[Any]:
        try:
            from mcp.client.stdio import StdioServerParameters, stdio_client
            from mcp.shared._httpx_utils import create_mcp_http_client
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "MCP servers need the `mcp` package: pip install 'swarm-dispatch[mcp]'"
            ) from None
        if self.server.url is not None:
            return _http(self.server.url, self.server.headers, create_mcp_http_client)
        assert self.server.command is not None
        if self._stderr is None:
            # The server's stderr goes to a file, so a crash can be explained with its last lines.
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        self._stderr.seek(0)
        self._stderr.truncate()
        params = StdioServerParameters(
            command=self.server.command[0],
            args=list(self.server.command[1:]),
            env=self.server.env,
            cwd=self.server.cwd,
        )
        return stdio_client(params, errlog=self._stderr)

    async def _failed(self, what: str, exc: BaseException) -> ToolError:
        if isinstance(exc, ToolError):
            return exc
        if isinstance(exc, TimeoutError):
            if not self.shared:  # a shared session may be serving other tasks' calls
                await self.aclose()
            return ToolError(
                f"MCP server {self.server.name!r}: {what} timed out after {self.server.timeout:g}s"
            )
        leaf = _leaf(exc)
        message = (
            f"MCP server {self.server.name!r} failed during {what}: {type(leaf).__name__}: {leaf}"
        )
        code = getattr(leaf, "code", None)
        if isinstance(code, int) and code != _CONNECTION_CLOSED:
            # The server answered with a JSON-RPC error: the session itself is fine.
            return ToolError(message)
        # A broken session is not trusted again: the next call reconnects.
        await self.aclose()
        return ToolError(message + self._stderr_tail())

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            lines = [line for line in self._stderr.read().splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return f" (server stderr ends: {' | '.join(lines[-3:])[-400:]})" if lines else ""

    def release(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    async def aclose(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            self._closing.set()
            done, _ = await asyncio.wait({owner}, timeout=5.0)
            if not done:
                owner.cancel()
                await asyncio.wait({owner})
        self._session = None


@asynccontextmanager
async def _http(url: str, headers: dict[str, str], make_client: Any) -> AsyncIterator[Any]:
    from mcp.client.streamable_http import streamable_http_client

    # A client we pass in is ours to close (the transport closes only the ones it makes).
    async with make_client(headers=headers or None) as client:
        async with streamable_http_client(url, http_client=client) as streams:
            yield streams


def _content_text(block: Any) -> str:
    text = getattr(block, "text", None)
    if isinstance(text, str):
        return text
    kind = getattr(block, "type", type(block).__name__)
    mime = getattr(block, "mime_type", None)
    return f"[{kind}{': ' + mime if mime else ''}]"


def _clean(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "_"


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
