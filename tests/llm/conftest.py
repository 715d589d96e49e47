"""Fixtures for the LLM room: a scripted OpenAI-shaped HTTP server on 127.0.0.1 (fast, in the test's
event loop), and the real llama.cpp server for the integration tests (session scope, may skip).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from llm_fakes import (
    LLM_VENV,
    REQUIRED,
    FakeOpenAI,
    ListSink,
    NoDelegation,
    ServerProcess,
    Sleeps,
    free_port,
    server_python,
)

from swarm.context import Context
from swarm.models import Task


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def make_ctx(sink: ListSink) -> Callable[..., Context]:
    from swarm.clock import SystemClock

    def make(text: str = "hi", **kwargs: Any) -> Context:
        task = Task(text=text, run_id="run-1")
        return Context(
            task,
            agent="tester",
            attempt=1,
            scheduler=NoDelegation(),
            sink=sink,
            clock=SystemClock(),
            **kwargs,
        )

    return make


@pytest.fixture(scope="session")
def llm_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ServerProcess]]:
    """Makes llama.cpp servers (stopped at the end of the session)."""
    made: list[ServerProcess] = []
    logs = tmp_path_factory.mktemp("llm-server")

    def make(*, start: bool = True) -> ServerProcess:
        python, model = server_python()
        port = free_port()
        server = ServerProcess(python, model, port, logs / f"server-{port}.log")
        made.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture(scope="session")
def llm_server(llm_server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    """A running llama.cpp server with SmolLM2-135M, shared by the session's tests."""
    return llm_server_factory()


def pytest_report_header() -> str:
    state = "present" if (LLM_VENV / "bin" / "python").exists() else "absent"
    required = " (required)" if REQUIRED else ""
    return f"llm server venv: {LLM_VENV} {state}{required}; python {sys.version.split()[0]}"

