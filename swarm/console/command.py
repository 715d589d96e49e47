"""`swarm console`: the click command of an interactive session (see `swarm.console.session`).

Parses options, loads agents, router and trace store, and hands them to `ConsoleSession`.
"""

from __future__ import annotations

import os
from importlib import import_module

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

DEFAULT_AGENTS = "swarm.examples.quickstart"
DEFAULT_HISTORY = "storage/console_history"


@click.command("console")
@click.option(
    "--agents",
    "agents_spec",
    default=DEFAULT_AGENTS,
    show_default=True,
    help="Module that defines the agents (default: the example help desk `swarm demo` runs).",
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
    agents_spec: str,
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
    from swarm.console.live import ObservedStore

    out = make_console()
    importable_cwd()
    registry = registry_for(agents_spec)
    out_of_scope = list(getattr(import_module(agents_spec.partition(":")[0]), "OUT_OF_SCOPE", []))
    with out.status("loading the router…"):
        router = load_router(router_spec, registry, models_dir, out)
    store = ObservedStore(db)
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
            out_of_scope=out_of_scope,
            session_id=session_id,
        ).run()
    finally:
        store.close()
