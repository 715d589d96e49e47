"""The executor contract, the in-process default, and executors by name (`--executor`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from swarm.errors import ConfigError

if TYPE_CHECKING:
    from swarm.agents import Agent
    from swarm.context import Context
    from swarm.models import Task

__all__ = ["EXECUTOR_ENV", "Executor", "LocalExecutor", "executor_from_spec"]

EXECUTOR_ENV = "SWARM_EXECUTOR"
"""The environment variable `--executor` defaults to: local, ray or ray://host:port."""


@runtime_checkable
class Executor(Protocol):
    """Runs agent bodies for a scheduler: `await run(agent, task, ctx)` is `agent.run(task, ctx)`
    done somewhere, with the same outcome (a value, or the exception the body raised), and
    cancelled when the awaiting task is cancelled (a deadline, `cancel`, shutdown).

    `Scheduler.start()` calls `start()` (`Swarm` does that), `Scheduler.close()` calls `close()`
    after the last body.
    """

    async def start(self) -> None: ...

    async def run(self, agent: Agent, task: Task, ctx: Context) -> Any: ...

    async def close(self) -> None: ...


class LocalExecutor:
    """Bodies run in this process, on the scheduler's event loop: `agent.run(task, ctx)`."""

    async def start(self) -> None:
        pass

    async def run(self, agent: Agent, task: Task, ctx: Context) -> Any:
        return await agent.run(task, ctx)

    async def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "LocalExecutor()"


def executor_from_spec(spec: str | None = None) -> Executor | None:
    """The executor `spec` names; None (in process) for "local".

    - "local" (or empty): None, the scheduler runs bodies itself.
    - "ray": `RayExecutor()`, which connects where `ray.init()` would ($RAY_ADDRESS, else a
      cluster started on this machine with `ray start`, else a new local one).
    - "ray://host:port" (Ray Client) or "ray:host:port" (a GCS address): `RayExecutor(address)`.

    `spec` None reads `$SWARM_EXECUTOR`. Raises `ConfigError` for anything else, or when the
    `ray` extra is not installed.
    """
    if spec is None:
        spec = os.environ.get(EXECUTOR_ENV, "local")
    spec = spec.strip()
    if spec in ("", "local"):
        return None
    if spec == "ray" or spec.startswith(("ray:", "ray://")):
        try:
            from swarm.executors.ray_executor import RayExecutor
        except ImportError as exc:
            raise ConfigError(
                f"executor {spec!r} needs Ray: pip install 'swarm-dispatch[ray]' ({exc})"
            ) from exc
        if spec == "ray":
            return RayExecutor()
        address = spec if spec.startswith("ray://") else spec.removeprefix("ray:")
        return RayExecutor(address)
    raise ConfigError(
        f"unknown executor {spec!r} (from --executor or ${EXECUTOR_ENV}): "
        "expected local, ray, ray://HOST:PORT or ray:HOST:PORT"
    )
