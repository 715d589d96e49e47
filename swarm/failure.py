"""A failure as data and back, for record and replay: a span keeps the class, args and state of
the exception a step raised, and a replay raises the same class again, so the agent takes the
branch it took the first time.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from swarm.errors import ReplayedError

__all__ = ["canonical_arguments", "exception_record", "rebuild_exception", "recorded_tool_result"]


def exception_record(exc: BaseException) -> dict[str, Any]:
    """What a replay needs to raise `exc` again: `{"type": "module:qualname", "args": [...],
    "state": {...}, "message": str(exc)}`. `args` and `state` (the instance `__dict__`) keep only
    JSON values; `exact` is False when anything had to be left out."""
    cls = type(exc)
    args = _json_or_none(list(exc.args))
    own = getattr(exc, "__dict__", {})
    state = _json_or_none({k: v for k, v in own.items() if not k.startswith("__")})
    return {
        "type": f"{cls.__module__}:{cls.__qualname__}",
        "args": args if args is not None else [str(exc)],
        "state": state if state is not None else {},
        "message": str(exc),
        "exact": args is not None and state is not None,
    }


def rebuild_exception(record: dict[str, Any]) -> BaseException:
    """The exception `exception_record` described: its own class with the same args and state
    when that class is already imported and comes back with the same message, else a
    `ReplayedError` naming it.

    Only modules already in `sys.modules` are looked in: code that catches a class has imported
    it, and a trace store must never make a replay import code. The rebuild follows pickle's
    protocol for exceptions (`cls.__new__(cls, *args)`, then the instance dict), without calling
    `__init__`, so classes whose `__init__` takes other arguments than `args` come back too.
    """
    name = str(record.get("type") or "")
    message = str(record.get("message") or "")
    module, _, qualname = name.partition(":")
    cls: Any = sys.modules.get(module)
    for part in qualname.split(".") if cls is not None and qualname else ["<none>"]:
        cls = getattr(cls, part, None)
    if record.get("exact") and isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            exc = cls.__new__(cls, *record.get("args") or [])
            exc.args = tuple(record.get("args") or [])
            vars(exc).update(record.get("state") or {})
            if str(exc) == message:
                return exc
        except Exception:  # any class that will not rebuild falls back below
            pass
    short = qualname.rsplit(".", 1)[-1] or "Exception"
    return ReplayedError(f"{short}: {message}" if message else short, original=name)


def recorded_tool_result(span: dict[str, Any]) -> Any:
    """What a recorded `tool` span (a stored row) answered: its output (a fresh copy through
    JSON), or its failure raised again as its own class (`rebuild_exception`; `ReplayedError`
    for a span recorded before exceptions were). Used by scenario replay and by resume."""
    if span["status"] == "error":
        record = span["attributes"].get("exception")
        if isinstance(record, dict):
            # The class the tool raised, so the agent's `except` takes the same branch.
            raise rebuild_exception(record)
        raise ReplayedError(f"replayed failure of tool {span['name']!r}: {span['error']}")
    return json.loads(json.dumps(span["attributes"]["output"]))


def canonical_arguments(value: Any) -> str:
    """One text for equal arguments (keys sorted): how replays match a call to a recording."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def _json_or_none(value: Any) -> Any:
    """`value` when it survives a JSON round trip unchanged, else None."""
    try:
        back = json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return None
    return value if back == value else None
