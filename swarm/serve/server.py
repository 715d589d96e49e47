"""Running the app: uvicorn on one event loop, with the swarm started inside it."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import uvicorn

from swarm.serve.app import create_app
from swarm.serve.security import DEFAULT_MAX_BODY, check_bind, token_from_env
from swarm.swarm import Swarm

__all__ = ["serve"]


def serve(
    swarm: Swarm,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    models_dir: str | Path | None = None,
    log_level: str = "info",
    sock: socket.socket | None = None,
    **uvicorn_options: Any,
) -> None:
    """Serve `swarm`'s API on `host`:`port` until interrupted (Ctrl-C, SIGTERM), then close the
    swarm (running tasks finish first, as `Swarm.close` does) and return (after SIGTERM, the
    signal is raised again once all is closed).

    `token`: None reads `$SWARM_API_TOKEN`. Raises `ConfigError` before listening when `host` is
    not a loopback address and there is no token. `sock`: an already bound socket to serve on
    instead of `host`:`port` (tests bind port 0). Other keywords go to `uvicorn.Config`."""
    token = token_from_env() if token is None else (token or None)
    check_bind(sock.getsockname()[0] if sock is not None else host, token)
    app = create_app(swarm, token=token or "", max_body=max_body, models_dir=models_dir)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        # The query string may hold `access_token` (event streams): keep it out of the log.
        access_log=False,
        **uvicorn_options,
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock] if sock is not None else None)
    except KeyboardInterrupt:
        # uvicorn stops gracefully on Ctrl-C, then raises it again for the caller: here the stop
        # was the wanted end, not an abort. (SIGTERM is raised again too, and ends the process.)
        pass
