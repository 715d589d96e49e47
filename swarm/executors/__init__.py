"""Where agent bodies run: in this process (`LocalExecutor`, the default) or on a Ray cluster
(`RayExecutor`, the `ray` extra). Routing, the store and every limit stay with the scheduler; an
executor only runs `agent.run(task, ctx)` somewhere and brings back what it returned.

    async with Swarm(agents, executor=RayExecutor("auto")) as swarm: ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from swarm.executors.base import EXECUTOR_ENV, Executor, LocalExecutor, executor_from_spec

if TYPE_CHECKING:
    from swarm.executors.ray_executor import RayExecutor

__all__ = ["EXECUTOR_ENV", "Executor", "LocalExecutor", "RayExecutor", "executor_from_spec"]


def __getattr__(name: str) -> Any:
    if name == "RayExecutor":  # imports ray: only when asked for
        from swarm.executors.ray_executor import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
