"""`swarm mcp`: the swarm itself as a Model Context Protocol server over stdio, so another agent
(an IDE, a desktop assistant, another swarm) can hand it tasks. Needs `swarm-dispatch[mcp]`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import click
from rich.console import Console

from swarm.cli.common import (
    DB_OPTION,
    MODELS_OPTION,
    ROUTER_OPTION,
    importable_cwd,
    llm_from_env,
    load_router,
    registry_for,
)
from swarm.errors import ConfigError

__all__ = ["mcp"]


@click.command("mcp")
@click.option(
    "--agents",
    "agents_spec",
    default=None,
    help="Module that defines the agents. Default: installed plug-ins (entry points swarm.agents).",
)
@ROUTER_OPTION
@MODELS_OPTION
@DB_OPTION
@click.option("--concurrency", default=64, show_default=True, help="Agents running at once.")
def mcp(
    agents_spec: str | None, router_spec: str, models_dir: str, db: str, concurrency: int
) -> None:
    """Serve the swarm over MCP (stdio): tools `run_task` (route, run, answer) and `list_agents`.

    Every task is traced in the store like `swarm run` (one run for the server's life). Stdout
    carries the protocol; messages for people go to stderr.
    """
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError as MCPToolError
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "`swarm mcp` needs the `mcp` package: pip install 'swarm-dispatch[mcp]'"
        ) from None
    from swarm.models import TaskStatus
    from swarm.swarm import Swarm

    err = Console(stderr=True, highlight=False)  # stdout belongs to the protocol
    importable_cwd()
    registry = registry_for(agents_spec)
    router = load_router(router_spec, registry, models_dir, err)
    swarm = Swarm(
        registry,
        router=router,
        db=db,
        llm=llm_from_env(),
        concurrency=concurrency,
        run_kind="mcp",
        run_meta={"router": router_spec, "agents": agents_spec, "pid": os.getpid()},
    )
    server = MCPServer(
        "swarm",
        instructions="A swarm of specialised agents behind a router. Call run_task with a request "
        "in plain words; list_agents says who can take what.",
    )

    @server.tool()
    async def run_task(
        text: str, agent: str | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Route a request to the right agent, run it and return its result.

        Args:
            text: the request, in plain words
            agent: an agent's name, to skip routing
            session: a session id, to keep several requests in one conversation
        """
        if agent is not None and agent not in registry:
            raise MCPToolError(f"there is no agent {agent!r}; agents: {registry.names}")
        result = await swarm.run(text, agent=agent, session=session)
        if result.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            raise MCPToolError(f"task {result.task_id} {result.status.value}: {result.error}")
        decision = result.decision
        return {
            "task_id": result.task_id,
            "status": result.status.value,
            "agent": result.agent,
            "output": result.output,
            "error": result.error,
            "confidence": decision.confidence if decision is not None else None,
        }

    @server.tool()
    def list_agents() -> list[dict[str, str]]:
        """The agents this swarm runs, with what each is for."""
        return [{"name": a.name, "description": a.description} for a in registry]

    async def serve() -> None:
        async with swarm:
            err.print(f"[grey50]swarm mcp: {len(registry)} agents, run {swarm.run_id}[/grey50]")
            await server.run_stdio_async()

    asyncio.run(serve())
