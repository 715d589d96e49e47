"""`swarm serve`: the HTTP API and the web page of a swarm (see `swarm.serve`)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from swarm.cli.common import (
    DB_OPTION,
    EXECUTOR_OPTION,
    MODELS_OPTION,
    ROUTER_OPTION,
    importable_cwd,
    llm_from_env,
    load_router,
    make_console,
    registry_for,
)

__all__ = ["serve"]


@click.command("serve")
@click.option(
    "--agents",
    "agents_spec",
    default=None,
    help="Module that defines the agents. Default: installed plug-ins (entry points swarm.agents).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@ROUTER_OPTION
@MODELS_OPTION
@DB_OPTION
@EXECUTOR_OPTION
@click.option("--concurrency", default=64, show_default=True, help="Agents running at once.")
@click.option(
    "--max-body",
    default=1 << 20,
    show_default=True,
    type=click.IntRange(min=1),
    help="Bytes a request body may hold (413 beyond).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(
    agents_spec: str | None,
    host: str,
    port: int,
    router_spec: str,
    models_dir: str,
    db: str,
    executor_spec: str | None,
    concurrency: int,
    max_body: int,
    log_level: str,
) -> None:
    """Serve the swarm over HTTP: the API, its event streams and the web page at /.

    With $SWARM_API_TOKEN set, every /v1 route asks for `Authorization: Bearer TOKEN`; without
    it, swarm serve listens on loopback only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from swarm.executors import executor_from_spec
    from swarm.serve import check_bind
    from swarm.serve import serve as run_server
    from swarm.serve.security import token_from_env
    from swarm.swarm import Swarm

    token = token_from_env()
    check_bind(host, token)  # before minutes of loading a router
    out = make_console()
    importable_cwd()
    registry = registry_for(agents_spec)
    with out.status("loading the router…"):
        router = load_router(router_spec, registry, models_dir, out)
    swarm = Swarm(
        registry,
        router=router,
        db=db,
        llm=llm_from_env(),
        concurrency=concurrency,
        executor=executor_from_spec(executor_spec),
        run_kind="serve",
        run_meta={"router": router_spec, "agents": agents_spec},
    )
    folder = versions_folder(models_dir, str(router.version))
    auth = "a bearer token ($SWARM_API_TOKEN)" if token else "no token (loopback only)"
    out.print(
        f"swarm serve: {len(registry)} agents, router {router.version}, {auth}; "
        f"http://{host}:{port}/ (API: /openapi.json)"
    )
    run_server(
        swarm,
        host=host,
        port=port,
        token=token or "",
        max_body=max_body,
        models_dir=folder,
        log_level=log_level,
    )


def versions_folder(models_dir: str, version: str) -> Path:
    """The folder that holds `version` among its router versions: `models_dir`, or the pack's
    folder inside it where `auto` keeps a pack's router (`models_dir/bank`)."""
    from swarm.router.artifacts import MANIFEST_FILE

    root = Path(models_dir)
    if (root / version / MANIFEST_FILE).is_file() or not root.is_dir():
        return root
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if (sub / version / MANIFEST_FILE).is_file():
            return sub
    return root
