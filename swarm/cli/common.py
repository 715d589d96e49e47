"""What the `swarm` commands share: the common options, the console they print to, how they find
agents, a router and an LLM endpoint, and training progress bars.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import click
from rich.console import Console

from swarm.paths import DEFAULT_MODELS_DIR

__all__ = [
    "DB_OPTION",
    "EXECUTOR_OPTION",
    "MODELS_OPTION",
    "ROUTER_OPTION",
    "default_db_url",
    "importable_cwd",
    "llm_from_env",
    "load_router",
    "make_console",
    "progress_bars",
    "registry_for",
]


def default_db_url() -> str:
    """$SWARM_DB, else the trace store's default file."""
    from swarm.trace import DEFAULT_DB_URL  # SQLAlchemy: only when a command needs the store

    return os.environ.get("SWARM_DB", DEFAULT_DB_URL)


class _DbOption(click.Option):
    """`--db`, whose shown default names the store's default URL when help is drawn, so that
    importing the CLI does not import the store (and SQLAlchemy) just to print help."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from swarm.trace import DEFAULT_DB_URL

        self.show_default = "$SWARM_DB or " + DEFAULT_DB_URL
        return super().get_help_record(ctx)


DB_OPTION = click.option(
    "--db",
    cls=_DbOption,
    default=default_db_url,
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
EXECUTOR_OPTION = click.option(
    "--executor",
    "executor_spec",
    default=None,
    help="Where agent bodies run: local (this process), ray (the cluster `ray start` made here, "
    "or $RAY_ADDRESS), ray://HOST:PORT (Ray Client) or ray:HOST:PORT. Default $SWARM_EXECUTOR, "
    "else local.",
)
MODELS_OPTION = click.option(
    "--models-dir",
    default=DEFAULT_MODELS_DIR,
    show_default=True,
    help="Where trained router versions live.",
)


def progress_bars(console: Console, enabled: bool = True) -> Any:
    """`swarm.views.progress_bars`, imported when a command draws bars: it imports the models
    (pydantic), which `swarm --help` should not wait for."""
    from swarm.views import progress_bars as bars

    return bars(console, enabled)


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

    learned = default_router_factory(models_dir, console=out, progress=progress)(spec, registry)
    if spec == "keyword":
        return learned
    return second_opinion_from_env(learned, registry=registry)  # off unless SWARM_ROUTER_LLM=1


def llm_from_env() -> Any:
    """The LLM client `SWARM_LLM_BASE_URL` (and `_MODEL`, `_API_KEY` …) configure, or None."""
    if not os.environ.get("SWARM_LLM_BASE_URL"):
        return None
    from swarm.llm import LLM

    return LLM.from_env()


ENABLE_ENV = "SWARM_ROUTER_LLM"
"""Set to 1 to ask the LLM that `SWARM_LLM_BASE_URL` (…) configures when the router is unsure."""


def second_opinion_from_env(
    router: Any, *, registry: Any = None, environ: Mapping[str, str] | None = None
) -> Any:
    """`router` wrapped in a SecondOpinionRouter when `SWARM_ROUTER_LLM` is 1 (or true/yes),
    else `router` itself: off by default. `SWARM_ROUTER_LLM_BELOW` sets the confidence under
    which it asks, `SWARM_ROUTER_LLM_STYLE` the `response_format` spelling ("llama.cpp" for
    llama-cpp-python servers). Raises ConfigError when it is on but no endpoint is configured."""
    from swarm.errors import ConfigError
    from swarm.router.second_opinion import SecondOpinionRouter

    env = os.environ if environ is None else environ
    if env.get(ENABLE_ENV, "").strip().lower() not in ("1", "true", "yes", "on"):
        return router
    if not env.get("SWARM_LLM_BASE_URL"):
        raise ConfigError(f"{ENABLE_ENV} is set but no LLM endpoint is: set SWARM_LLM_BASE_URL")
    from swarm.llm import LLM

    style = env.get(f"{ENABLE_ENV}_STYLE", "openai")
    if style not in ("openai", "llama.cpp"):
        raise ConfigError(f"{ENABLE_ENV}_STYLE must be openai or llama.cpp, got {style!r}")
    try:
        below = float(env.get(f"{ENABLE_ENV}_BELOW", "0.6"))
    except ValueError:
        raise ConfigError(f"{ENABLE_ENV}_BELOW must be a number") from None
    descriptions = {a.name: a.description for a in registry} if registry is not None else None
    return SecondOpinionRouter(
        router,
        LLM.from_env(env),
        below=below,
        descriptions=descriptions,
        style=style,  # type: ignore[arg-type]
    )
