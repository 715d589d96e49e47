"""What the `swarm` commands share: the common options, the console they print to, how they find
agents, a router and an LLM endpoint, and training progress bars.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console

from swarm.trace import DEFAULT_DB_URL

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
    default="storage/models",
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


def load_router(spec: str, registry: Any, models_dir: str, out: Console) -> Any:
    """The router a command asked for: `keyword`, an artifact folder, or `auto`."""
    if spec == "keyword":
        from swarm.testing import KeywordRouter

        return KeywordRouter(registry)
    from swarm import router as routing
    from swarm.cli.router import second_opinion_from_env

    if spec == "auto":
        if registry.router_for is not None:  # the pack knows how it is trained
            learned = registry.router_for(registry, models_dir, console=out)
        else:
            learned = routing.ensure_router(registry, models_dir, console=out)
    else:
        learned = routing.load_router(spec, registry=registry)
    return second_opinion_from_env(learned, registry=registry)  # off unless SWARM_ROUTER_LLM=1


def llm_from_env() -> Any:
    """The LLM client `SWARM_LLM_BASE_URL` (and `_MODEL`, `_API_KEY` …) configure, or None."""
    if not os.environ.get("SWARM_LLM_BASE_URL"):
        return None
    from swarm.llm import LLM

    return LLM.from_env()


@contextmanager
def progress_bars(
    console: Console, enabled: bool = True
) -> Iterator[Callable[[str, int], Callable[[int], None]] | None]:
    """A factory of transient rich bars (for encoding and training), or None when bars would only
    clutter: JSON output, or not a terminal."""
    if not enabled or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bars:

        def make(description: str, total: int) -> Callable[[int], None]:
            task = bars.add_task(description, total=total)
            return lambda n: bars.advance(task, n)

        yield make
