"""The interactive console (`swarm console`): work with the swarm by hand and teach its router.

`ConsoleSession` runs the prompt; the views and `/retrain` live beside it.
"""

from __future__ import annotations

from swarm.console.session import ConsoleSession

__all__ = ["ConsoleSession"]
