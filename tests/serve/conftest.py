"""Fixtures for `swarm serve`: the bank's agents on a fresh sandbox, a real uvicorn server on a free
loopback port (swarm.testing.serve.LiveServer) and an httpx client for it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarm import Swarm
from swarm.agents import AgentRegistry
from swarm.testing import KeywordRouter, centroid_router
from swarm.testing.serve import LiveServer
from swarm_examples import bank

MakeServer = Callable[..., LiveServer]


@pytest.fixture
def registry() -> AgentRegistry:
    """The bank's customer and engineering desks (thirteen agents)."""
    reg = AgentRegistry()
    reg.add_pack(bank.PACK)
    return reg


@pytest.fixture
def services() -> Iterator[dict[str, Any]]:
    """A freshly seeded sandbox bank in a temp folder (the pack's own `sandbox` fixture)."""
    made = bank.sandbox({})
    yield made
    bank.teardown(made)


@pytest.fixture
def make_server(
    registry: AgentRegistry, services: dict[str, Any], db_url: str
) -> Iterator[MakeServer]:
    """`make_server(router=None, token="", **LiveServer options)`: a started server over a swarm
    of the bank's agents (the keyword router unless another is given); stopped at the end."""
    started: list[LiveServer] = []

    def make(router: Any = None, **options: Any) -> LiveServer:
        swarm = Swarm(
            registry,
            router=router if router is not None else KeywordRouter(registry),
            db=db_url,
            services=services,
            run_kind="serve",
        )
        server = LiveServer(swarm, **options).__enter__()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: MakeServer) -> LiveServer:
    return make_server()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def wait_done(client: httpx.Client, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll `GET /v1/tasks/{id}` until the task is finished; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/tasks/{task_id}").raise_for_status().json()
        if body["status"] not in ("queued", "running", "waiting"):
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"task {task_id} still {body['status']}"
        time.sleep(0.02)


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(event, data, id) of each server-sent event of a streamed response."""
    import json

    event, data, ident = "message", [], ""
    for line in response.iter_lines():
        if line == "":
            if data:
                yield event, json.loads("\n".join(data)), ident
            event, data, ident = "message", [], ""
        elif line.startswith(":"):
            continue  # a comment (sse-starlette's pings)
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                ident = value


@pytest.fixture
def models_dir(tmp_path: Path, registry: AgentRegistry) -> Path:
    """Two saved versions for the bank's agents: `v1-first` and `v2-second` (CURRENT)."""
    root = tmp_path / "models"
    centroid_router(registry, "v1-first").save(root, make_current=False)
    centroid_router(registry, "v2-second").save(root)
    return root
