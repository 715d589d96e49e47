"""The asyncio scheduler: a bounded priority inbox, routing in micro-batches, per-agent lanes with
concurrency limits, timeouts, retries, handoffs, delegation, cancellation and graceful shutdown.

- `core`: the loop (submit, route, work, finish, close) and the task group that owns the workers.
- `slots`: lanes and slots, the one object that owns every count.
- `attempts`: one call of an agent under its deadline, retries, and the delegations it makes.
- `handoffs`: where a task may move next.
- `approvals`: the desk where tasks wait for a person's decision (`ctx.approve`).
"""

from swarm.models import RouterLike
from swarm.scheduler.core import Scheduler
from swarm.scheduler.handle import Sink, TaskHandle

__all__ = ["RouterLike", "Scheduler", "Sink", "TaskHandle"]
