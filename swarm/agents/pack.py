"""A pack: what an agents module exports in one object (agents, the router's extra training rows,
out-of-scope requests, scenario fixtures and state checks, demo requests, its suites folder).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from swarm.agents.base import Agent
from swarm.errors import AgentDefinitionError, ConfigError

__all__ = ["PACK_ATTRIBUTE", "Pack", "load_pack", "pack_from"]

PACK_ATTRIBUTE = "PACK"
"""The module-level name under which a module exports its `Pack`."""

Hook = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Pack:
    """One pack of agents and everything a router, a scenario suite or `swarm demo` needs with it.

    ```python
    PACK = Pack(
        name="bank",
        agents=[Cards(), Transfers()],
        training_data=lambda: [("my card never came", "cards"), ...],
        out_of_scope=["tell me a joke"],
        fixtures={"sandbox": sandbox},       # suite `setup:` names these
        state={"balance": balance},          # a step's `state:` check calls these
    )
    ```

    - `training_data()`: extra (text, agent name) rows the router learns from besides the agents'
      `examples` and descriptions (a labelled data set), or None.
    - `out_of_scope`: requests no agent should take; the router learns to reject them.
    - `fixtures[name](services, **args)` (sync or async) prepares the world a suite names under
      `setup:`; it may put objects into `services` or return a dict merged into it.
    - `state[name](services, **args)` returns a value a step's `state:` check examines.
    - `setup(services)` / `teardown(services)`: called around every suite that uses the pack.
    - `demo_requests`, `demo_trace`: what `swarm demo` sends (and which request's trace it draws);
      a pack without them shows its suites (`suites`, a folder of YAML suites) instead.
    - `demo_setup()`: prepares what the demo and a console session after it use; returns a line
      saying what it did, or None.
    - `module`: the import path `--agents` takes to load this pack (set by `load_pack`).

    Raises ConfigError, naming the pack and the field, when a field holds the wrong kind of value.
    """

    name: str
    agents: Sequence[Agent | type[Agent]]
    description: str = ""
    training_data: Callable[[], Iterable[tuple[str, str]]] | None = None
    out_of_scope: Sequence[str] = ()
    fixtures: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    state: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    setup: Hook | None = None
    teardown: Hook | None = None
    demo_requests: Sequence[str] = ()
    demo_trace: str | None = None
    demo_setup: Callable[[], str | None] | None = None
    suites: Path | None = None
    module: str = ""

    def __post_init__(self) -> None:
        where = f"pack {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"{where}: `name` must be a non-empty string")
        for key in ("out_of_scope", "demo_requests"):
            value = getattr(self, key)
            if isinstance(value, str) or not all(isinstance(t, str) for t in value):
                raise ConfigError(f"{where}: `{key}` must be a list of strings")
            object.__setattr__(self, key, tuple(value))
        for key in ("fixtures", "state"):
            value = getattr(self, key)
            if not isinstance(value, Mapping) or not all(callable(f) for f in value.values()):
                raise ConfigError(f"{where}: `{key}` must map names to functions")
        for key in ("training_data", "setup", "teardown", "demo_setup"):
            if getattr(self, key) is not None and not callable(getattr(self, key)):
                raise ConfigError(f"{where}: `{key}` must be a function or None")
        if self.demo_trace is not None and self.demo_trace not in self.demo_requests:
            raise ConfigError(f"{where}: `demo_trace` must be one of `demo_requests`")
        if self.suites is not None:
            object.__setattr__(self, "suites", Path(self.suites))

    def agent_list(self) -> list[Agent]:
        """The agents as instances (classes are created without arguments)."""
        return [a for item in self.agents for a in _collect(item, f"pack {self.name!r}")]

    def training_rows(self) -> list[tuple[str, str]]:
        """`training_data()` as a list of (text, label) pairs; [] when the pack has none.

        Raises ConfigError naming the pack and the row when a row is not two strings."""
        if self.training_data is None:
            return []
        rows: list[tuple[str, str]] = []
        for i, row in enumerate(self.training_data()):
            pair = isinstance(row, tuple | list) and len(row) == 2
            if not pair or not all(isinstance(v, str) for v in row):
                raise ConfigError(
                    f"pack {self.name!r}: training_data() row {i} is {row!r}, "
                    "expected (text, label) strings"
                )
            rows.append((row[0], row[1]))
        return rows


def load_pack(path: str) -> Pack:
    """The pack a module path names: `module` (its `PACK`, or the agents it defines) or
    `module:attribute` (a `Pack`, or agents). Raises ConfigError when it cannot be imported or
    defines no agents."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import agents module {module_name!r}: {exc}") from exc
    obj: Any = module
    if attr:
        try:
            obj = getattr(module, attr)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
    pack = pack_from(obj, path)
    if not pack.agents:
        raise ConfigError(
            f"module {path!r} defines no agents: expected a Pack named {PACK_ATTRIBUTE}, Agent "
            "subclasses, @agent functions, or a list named AGENTS"
        )
    return pack


def pack_from(obj: Any, where: str) -> Pack:
    """A `Pack` from what a module path or an entry point names: a Pack as it is; a module's
    `PACK`; otherwise the old module-level names (AGENTS, OUT_OF_SCOPE, FIXTURES, STATE, setup,
    teardown, DEMO_REQUESTS, DEMO_TRACE) or a bare agent, list or factory of agents.

    This is the one place those module-level names are read."""
    module_path = where.partition(":")[0]
    if isinstance(obj, ModuleType) and isinstance(getattr(obj, PACK_ATTRIBUTE, None), Pack):
        obj = getattr(obj, PACK_ATTRIBUTE)
    if isinstance(obj, Pack):
        return obj if obj.module else replace(obj, module=module_path)
    if not isinstance(obj, ModuleType):
        return Pack(name=where, agents=_collect(obj, where), module=module_path)
    names = vars(obj)
    hooks = {k: names.get(k) for k in ("setup", "teardown")}
    return Pack(
        name=obj.__name__,
        agents=_collect(obj, where),
        description=(obj.__doc__ or "").strip().split("\n\n")[0],
        out_of_scope=_strings(names.get("OUT_OF_SCOPE", ()), f"{where}.OUT_OF_SCOPE"),
        fixtures=dict(names.get("FIXTURES") or {}),
        state=dict(names.get("STATE") or {}),
        setup=hooks["setup"] if callable(hooks["setup"]) else None,
        teardown=hooks["teardown"] if callable(hooks["teardown"]) else None,
        demo_requests=_strings(names.get("DEMO_REQUESTS", ()), f"{where}.DEMO_REQUESTS"),
        demo_trace=names.get("DEMO_TRACE"),
        module=module_path,
    )


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str) or not all(isinstance(t, str) for t in value):
        raise ConfigError(f"{where} must be a list of strings")
    return list(value)


def _collect(obj: Any, where: str) -> list[Agent]:
    if isinstance(obj, Pack):
        return obj.agent_list()
    if isinstance(obj, ModuleType):
        if hasattr(obj, "AGENTS"):
            return _collect(obj.AGENTS, f"{where}.AGENTS")
        out: list[Agent] = []
        for value in vars(obj).values():
            if isinstance(value, Agent):
                out.append(value)
            elif _is_local_agent_class(value, obj.__name__):
                out.append(instantiate(value))
        return out
    if isinstance(obj, Agent) or (inspect.isclass(obj) and issubclass(obj, Agent)):
        return [instantiate(obj)]
    if isinstance(obj, list | tuple):
        return [a for item in obj for a in _collect(item, where)]
    if callable(obj):
        return _collect(obj(), where)
    raise AgentDefinitionError(f"{where} is {type(obj).__name__}, expected agents")


def _is_local_agent_class(value: Any, module_name: str) -> bool:
    return (
        inspect.isclass(value)
        and issubclass(value, Agent)
        and value.__module__ == module_name
        and not inspect.isabstract(value)
        and bool(getattr(value, "name", ""))
    )


def instantiate(item: Agent | type[Agent]) -> Agent:
    """An agent instance: `item` itself, or a new instance of an Agent subclass."""
    if isinstance(item, Agent):
        return item
    if inspect.isclass(item) and issubclass(item, Agent):
        try:
            return item()
        except TypeError as exc:
            raise AgentDefinitionError(
                f"agent class {item.__module__}.{item.__qualname__} cannot be created "
                f"without arguments: {exc}; register an instance instead"
            ) from exc
    raise AgentDefinitionError(f"{item!r} is not an Agent or Agent subclass")
