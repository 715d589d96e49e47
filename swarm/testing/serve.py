"""A real `swarm serve` server on a free loopback port, in a thread of this process: for tests of
the HTTP API (and of your own clients) with real sockets, uvicorn and a real event loop.

    with LiveServer(Swarm(agents, router=FakeRouter(...), db=url)) as server:
        httpx.post(server.url + "/v1/tasks", json={"text": "hello"})
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from swarm.serve import create_app
from swarm.swarm import Swarm

__all__ = ["LiveServer"]


class LiveServer:
    """`with LiveServer(swarm, token=...) as server:` starts uvicorn serving `create_app(swarm)` on
    127.0.0.1 (a port the OS picks), waits until it accepts requests, and on exit stops it (the
    swarm closes with it). `server.url` is its base URL. Raises RuntimeError when it does not
    start within `start_timeout` seconds (the app's start-up error is then in the log)."""

    def __init__(
        self,
        swarm: Swarm,
        *,
        token: str | None = "",
        max_body: int | None = None,
        models_dir: str | Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        options: dict[str, Any] = {"token": token, "models_dir": models_dir}
        if max_body is not None:
            options["max_body"] = max_body
        self.app = create_app(swarm, **options)
        self.swarm = swarm
        self.start_timeout = start_timeout
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        self._sock.close()
