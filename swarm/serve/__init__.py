"""`swarm serve`: the HTTP API of a running swarm (FastAPI on uvicorn), its server-sent events and
the web page. Install with the `serve` extra: `pip install 'swarm-dispatch[serve]'`.

    app = create_app(Swarm(agents, db="sqlite:///storage/swarm.db"))   # an ASGI app
    serve(swarm, host="127.0.0.1", port=8000)                         # or run it
"""

from __future__ import annotations

from swarm.serve.app import STATIC_DIR, create_app
from swarm.serve.security import DEFAULT_MAX_BODY, TOKEN_ENV, check_bind, is_loopback
from swarm.serve.server import serve

__all__ = [
    "DEFAULT_MAX_BODY",
    "STATIC_DIR",
    "TOKEN_ENV",
    "check_bind",
    "create_app",
    "is_loopback",
    "serve",
]
