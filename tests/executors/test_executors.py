"""The executor seam without Ray: the scheduler hands bodies to its executor (start, run, close),
timeouts cancel what the executor awaits, and executors are chosen by name."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from swarm import AgentRegistry, ConfigError, Scheduler, Swarm, TaskStatus, agent
from swarm.executors import EXECUTOR_ENV, Executor, LocalExecutor, executor_from_spec
from swarm.testing import FakeRouter, VirtualClock


@agent
async def echo(task, ctx):
    return f"{ctx.agent}:{task.text}"


@agent(timeout=5)
async def hangs(task, ctx):
    await ctx.clock.sleep(3600)


class Recording:
    """An executor that runs bodies in process and notes what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")

    async def run(self, agent: Any, task: Any, ctx: Any) -> Any:
        self.calls.append((agent.name, task.text, ctx.attempt))
        try:
            return await agent.run(task, ctx)
        except asyncio.CancelledError:
            self.events.append(f"cancelled {task.text}")
            raise

    async def close(self) -> None:
        self.events.append("close")


def test_the_executors_keep_the_protocol() -> None:
    assert isinstance(LocalExecutor(), Executor)
    assert isinstance(Recording(), Executor)


async def test_the_scheduler_hands_bodies_to_its_executor() -> None:
    executor = Recording()
    s = Scheduler(AgentRegistry([echo]), FakeRouter(default="echo"), executor=executor)
    await s.start()
    result = await s.run("hello")
    await s.close()
    assert result.ok and result.output == "echo:hello"
    assert executor.calls == [("echo", "hello", 1)]
    assert executor.events == ["start", "close"]


async def test_a_timeout_cancels_what_the_executor_awaits(clock: VirtualClock) -> None:
    executor = Recording()
    s = Scheduler(
        AgentRegistry([hangs]), FakeRouter(default="hangs"), executor=executor, clock=clock
    )
    result = await s.run("forever")
    await s.close()
    assert result.status is TaskStatus.FAILED
    assert result.error == "timed out after 5s"
    assert "cancelled forever" in executor.events


async def test_local_executor_is_the_in_process_default() -> None:
    s = Scheduler(AgentRegistry([echo]), FakeRouter(default="echo"), executor=LocalExecutor())
    result = await s.run("hi")
    await s.close()
    assert result.output == "echo:hi"


async def test_swarm_takes_an_executor_by_name() -> None:
    async with Swarm([echo], router=FakeRouter(default="echo"), db=None, executor="local") as s:
        assert s.scheduler.executor is None
        assert (await s.run("x")).output == "echo:x"


def test_executors_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert executor_from_spec("local") is None
    assert executor_from_spec("") is None
    monkeypatch.setenv(EXECUTOR_ENV, "local")
    assert executor_from_spec() is None
    pytest.importorskip("ray")
    from swarm.executors import RayExecutor

    plain = executor_from_spec("ray")
    assert isinstance(plain, RayExecutor) and plain.address is None
    client = executor_from_spec("ray://head:10001")
    assert isinstance(client, RayExecutor) and client.address == "ray://head:10001"
    gcs = executor_from_spec("ray:127.0.0.1:6379")
    assert isinstance(gcs, RayExecutor) and gcs.address == "127.0.0.1:6379"
    monkeypatch.setenv(EXECUTOR_ENV, "ray://from-env:10001")
    from_env = executor_from_spec()
    assert isinstance(from_env, RayExecutor) and from_env.address == "ray://from-env:10001"


def test_an_unknown_executor_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, "dask")
    with pytest.raises(ConfigError, match=r"unknown executor 'dask'.*SWARM_EXECUTOR"):
        executor_from_spec()


def test_swarm_run_names_a_bad_executor_in_one_line(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from swarm.cli import main

    done = CliRunner().invoke(
        main,
        ["run", "hi", "--agent", "echo", "--agents", __name__, "--executor", "dask",
         "--db", f"sqlite:///{tmp_path / 'x.db'}"],
    )  # fmt: skip
    assert done.exit_code == 2, done.output
    assert "unknown executor 'dask'" in done.output
