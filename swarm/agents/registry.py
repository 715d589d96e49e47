"""The registry: a plain dict of agents by name, filled by `register()`, a module path, or the
entry points of installed packages.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from swarm.agents.base import Agent, check_agent
from swarm.errors import AgentDefinitionError, AgentNotFound, ConfigError

__all__ = ["ENTRY_POINT_GROUP", "AgentRegistry", "agents_in"]

ENTRY_POINT_GROUP = "swarm.agents"


class AgentRegistry:
    def __init__(
        self, agents: Iterable[Agent | type[Agent]] = (), *, out_of_scope: Iterable[str] = ()
    ) -> None:
        self._agents: dict[str, Agent] = {}
        self.out_of_scope: list[str] = list(out_of_scope)
        """Requests no agent should take; the router learns to reject them. A module adds its
        own with a list named OUT_OF_SCOPE."""
        self.router_for: Callable[..., Any] | None = None
        """A module's own way to get its trained router, `router_for(registry, models_dir, *,
        console)`, for packs trained on more than their agents' examples (the bank's BANKING77
        rows); `--router auto` uses it instead of training from the examples."""
        for a in agents:
            self.register(a)

    def register(self, item: Agent | type[Agent]) -> Agent:
        a = _instantiate(item)
        check_agent(a)
        if a.name in self._agents:
            other = self._agents[a.name]
            if other is a:
                return a
            raise AgentDefinitionError(
                f"two agents are named {a.name!r}: {other.origin} and {a.origin}; "
                "names must be unique"
            )
        self._agents[a.name] = a
        return a

    def load_module(self, path: str) -> list[Agent]:
        """Import `path` (a dotted module or `module:attribute`) and register its agents."""
        found = [self.register(a) for a in agents_in(path)]
        module = importlib.import_module(path.partition(":")[0])
        extra = getattr(module, "OUT_OF_SCOPE", ())
        if isinstance(extra, str) or not all(isinstance(t, str) for t in extra):
            raise ConfigError(f"{path}.OUT_OF_SCOPE must be a list of strings")
        self.out_of_scope += [t for t in extra if t not in self.out_of_scope]
        hook = getattr(module, "router_for", None)
        if callable(hook):
            self.router_for = hook
        if not found:
            raise ConfigError(
                f"module {path!r} defines no agents: expected Agent subclasses, @agent functions, "
                "or a list named AGENTS"
            )
        return found

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[Agent]:
        found: list[Agent] = []
        for ep in entry_points(group=group):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plug-in must say which one it is
                raise AgentDefinitionError(
                    f"entry point {ep.name!r} ({ep.value}) in group {group!r} failed to load: {exc}"
                ) from exc
            found += [self.register(a) for a in _collect(obj, ep.value)]
        return found

    def get(self, name: str) -> Agent:
        try:
            return self._agents[name]
        except KeyError:
            known = ", ".join(sorted(self._agents)) or "none registered"
            raise AgentNotFound(f"no agent named {name!r} (agents: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def __iter__(self) -> Iterator[Agent]:
        return iter(self._agents.values())

    def __len__(self) -> int:
        return len(self._agents)

    @property
    def names(self) -> list[str]:
        return sorted(self._agents)

    def fingerprint(self) -> str:
        """A short hash of the agent names: a router trained for another set can tell."""
        return hashlib.sha256("\n".join(self.names).encode()).hexdigest()[:16]


def agents_in(path: str) -> list[Agent]:
    """The agents a module path names, without registering them."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import agents module {module_name!r}: {exc}") from exc
    if attr:
        try:
            obj: Any = getattr(module, attr)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
        return _collect(obj, path)
    return _collect(module, path)


def _collect(obj: Any, where: str) -> list[Agent]:
    if isinstance(obj, ModuleType):
        if hasattr(obj, "AGENTS"):
            return _collect(obj.AGENTS, f"{where}.AGENTS")
        out: list[Agent] = []
        for value in vars(obj).values():
            if isinstance(value, Agent):
                out.append(value)
            elif _is_local_agent_class(value, obj.__name__):
                out.append(_instantiate(value))
        return out
    if isinstance(obj, Agent) or (inspect.isclass(obj) and issubclass(obj, Agent)):
        return [_instantiate(obj)]
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


def _instantiate(item: Agent | type[Agent]) -> Agent:
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
