"""`swarm console`: the click command of an interactive session (see `swarm.console.session`).

Parses options, loads agents, router and trace store, and hands them to `ConsoleSession`.
Without `--agents` it opens the installed quickstart demo (entry points `swarm.demos`).
`python -m swarm.cli.console_command` runs it outside the `swarm` group.
"""

from __future__ import annotations

import os

import click

from swarm.cli.common import (
    DB_OPTION,
    MODELS_OPTION,
    ROUTER_OPTION,
    importable_cwd,
    load_router,
    make_console,
    registry_for,
)

__all__ = ["console_command"]

DEFAULT_DEMO = "quickstart"
"""The installed demo the console opens without `--agents` (else the one `swarm demo` runs)."""
DEFAULT_HISTORY = "storage/console_history"


@click.command("console")
@click.option(
    "--agents",
    "agents_spec",
    default=None,
    help="Module that defines the agents (default: the installed quickstart demo's help desk).",
)
@ROUTER_OPTION
@MODELS_OPTION
@DB_OPTION
@click.option(
    "--history",
    "history_file",
    default=DEFAULT_HISTORY,
    show_default=True,
    help="The prompt's history file, kept across sessions ('' for none).",
)
@click.option("--session", "session_id", default=None, help="Session id (default: a new one).")
def console_command(
    agents_spec: str | None,
    router_spec: str,
    models_dir: str,
    db: str,
    history_file: str,
    session_id: str | None,
) -> None:
    """Work with the swarm interactively: ask, watch agents work, correct the router, retrain."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from swarm.console import ConsoleSession
    from swarm.trace import TraceStore

    out = make_console()
    importable_cwd()
    agents_spec = agents_spec or default_agents()
    registry = registry_for(agents_spec)
    with out.status("loading the router…"):
        router = load_router(router_spec, registry, models_dir, out)
    store = TraceStore(db)
    try:
        ConsoleSession(
            registry=registry,
            router=router,
            store=store,
            console=out,
            agents_spec=agents_spec,
            router_spec=router_spec,
            models_dir=models_dir,
            history_file=history_file or None,
            out_of_scope=registry.out_of_scope,
            session_id=session_id,
        ).run()
    finally:
        store.close()


def default_agents() -> str:
    """The module of the installed `DEFAULT_DEMO`, else of the demo `swarm demo` runs. Raises
    ConfigError saying how to install one when no demo is installed."""
    from swarm.agents import installed_demos, load_demo
    from swarm.cli.demo import default_demo

    name = DEFAULT_DEMO if DEFAULT_DEMO in installed_demos() else default_demo()
    return load_demo(name).module


if __name__ == "__main__":
    from swarm.cli.router import run_standalone

    run_standalone(console_command, None, "python -m swarm.cli.console_command")
