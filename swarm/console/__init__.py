"""The interactive console (`swarm console`): work with the swarm by hand and teach its router.

`ConsoleSession` runs the prompt; the views and `/retrain` live beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swarm.console.session import ConsoleSession

__all__ = ["ConsoleSession"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `swarm --help` (which reads the console command's summary)
    # does not import the session, the trace store and SQLAlchemy.
    if name == "ConsoleSession":
        from swarm.console.session import ConsoleSession

        return ConsoleSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
