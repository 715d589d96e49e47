"""What the `swarm` commands share: the common options, the console they print to, how they find
agents, a router and an LLM endpoint, and training progress bars.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from swarm.paths import DEFAULT_MODELS_DIR
from swarm.trace import DEFAULT_DB_URL
from swarm.views import progress_bars

__all__ = [
    "DB_OPTION",
    "MODELS_OPTION",
    "ROUTER_OPTION",
    "importable_cwd",
    "llm_from_env",
    "load_router",
    "make_console",
    "progress_bars",
    "registry_for",
]

DB_OPTION = click.option(
    "--db",
    default=lambda: os.environ.get("SWARM_DB", DEFAULT_DB_URL),
    show_default="$SWARM_DB or " + DEFAULT_DB_URL,
    help="Trace store URL (any SQLAlchemy URL).",
)
ROUTER_OPTION = click.option(
    "--router",
    "router_spec",
    default="auto",
    show_default=True,
    help="auto (the trained router for these agents, trained on first use), keyword (no model), "
    "or a router artifact folder.",
)
MODELS_OPTION = click.option(
    "--models-dir",
    default=DEFAULT_MODELS_DIR,
    show_default=True,
    help="Where trained router versions live.",
)


def make_console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def importable_cwd() -> None:
    """`--agents my_agents` should find my_agents.py in the folder the command runs in."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def registry_for(agents_spec: str | None) -> Any:
    """The agents of a module path, or of the installed plug-ins when no module is named."""
    from swarm.agents import AgentRegistry
    from swarm.errors import ConfigError

    registry = AgentRegistry()
    if agents_spec:
        registry.load_module(agents_spec)
    elif not registry.load_entry_points():
        raise ConfigError(
            "no agents: pass --agents MODULE, or install a package with `swarm.agents` entry points"
        )
    return registry


def load_router(
    spec: str,
    registry: Any,
    models_dir: str,
    out: Console,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> Any:
    """The router a command asked for: `keyword`, an artifact folder, or `auto` (the trained
    router for these agents and their packs' data, trained on first use)."""
    from swarm.scenarios.runner import default_router_factory

    return default_router_factory(models_dir, console=out, progress=progress)(spec, registry)


def llm_from_env() -> Any:
    """The LLM client `SWARM_LLM_BASE_URL` (and `_MODEL`, `_API_KEY` …) configure, or None."""
    if not os.environ.get("SWARM_LLM_BASE_URL"):
        return None
    from swarm.llm import LLM

    return LLM.from_env()
