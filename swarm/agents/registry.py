"""The registry: a plain dict of agents by name, filled by `register()`, a pack (a module path),
or the entry points of installed packages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points

from swarm.agents.base import Agent, check_agent
from swarm.agents.pack import Pack, instantiate, load_pack, pack_from
from swarm.errors import AgentDefinitionError, AgentNotFound, ConfigError
from swarm.models import OUT_OF_SCOPE

__all__ = [
    "DEMO_ENTRY_POINT_GROUP",
    "ENTRY_POINT_GROUP",
    "AgentRegistry",
    "agents_in",
    "installed_demos",
    "load_demo",
]

ENTRY_POINT_GROUP = "swarm.agents"
"""Installed packages name their agents (or packs) here; loaded when no module is named."""
DEMO_ENTRY_POINT_GROUP = "swarm.demos"
"""Installed packages name their demo packs here; `swarm demo NAME` runs one."""


class AgentRegistry:
    def __init__(
        self, agents: Iterable[Agent | type[Agent]] = (), *, out_of_scope: Iterable[str] = ()
    ) -> None:
        self._agents: dict[str, Agent] = {}
        self.out_of_scope: list[str] = list(out_of_scope)
        """Requests no agent should take; the router learns to reject them. A pack adds its own
        (`Pack.out_of_scope`)."""
        self.packs: list[Pack] = []
        """The packs loaded, in order: their training data, fixtures and demos."""
        for a in agents:
            self.register(a)

    @classmethod
    def of(
        cls, agents: Iterable[Agent | type[Agent]] | AgentRegistry | str, *, what: str = "a swarm"
    ) -> AgentRegistry:
        """The registry `agents` names: itself, the agents of a module path (`"mypkg.agents"`),
        or these agents. Raises `ConfigError` when that holds no agent ("`what` needs ...")."""
        if isinstance(agents, AgentRegistry):
            registry = agents
        elif isinstance(agents, str):
            registry = cls()
            registry.load_module(agents)
        else:
            registry = cls(agents)
        if not len(registry):
            raise ConfigError(f"{what} needs at least one agent")
        return registry

    def register(self, item: Agent | type[Agent]) -> Agent:
        a = instantiate(item)
        check_agent(a)
        if a.name == OUT_OF_SCOPE:
            raise AgentDefinitionError(
                f"{a.origin}: the name {a.name!r} is reserved: it means no agent should take a "
                "request (in feedback and router data)"
            )
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

    def add_pack(self, pack: Pack) -> list[Agent]:
        """Register a pack's agents and out-of-scope requests, and keep the pack."""
        found = [self.register(a) for a in pack.agent_list()]
        self.out_of_scope += [t for t in pack.out_of_scope if t not in self.out_of_scope]
        if pack not in self.packs:
            self.packs.append(pack)
        return found

    def load_module(self, path: str) -> list[Agent]:
        """Import `path` (a dotted module or `module:attribute`) and register its pack."""
        return self.add_pack(load_pack(path))

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[Agent]:
        """Register the packs (or agents) that installed packages name in `group`."""
        found: list[Agent] = []
        for ep in entry_points(group=group):
            try:
                pack = pack_from(ep.load(), ep.value)
            except Exception as exc:  # a broken plug-in must say which one it is
                raise AgentDefinitionError(
                    f"entry point {ep.name!r} ({ep.value}) in group {group!r} failed to load: {exc}"
                ) from exc
            found += self.add_pack(pack)
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
    """The agents of a module path, without registering them."""
    return load_pack(path).agent_list()


def installed_demos(group: str = DEMO_ENTRY_POINT_GROUP) -> dict[str, str]:
    """Name -> `module:attribute` of every demo pack installed packages offer, sorted by name."""
    return {ep.name: ep.value for ep in sorted(entry_points(group=group), key=lambda e: e.name)}


def load_demo(name: str, group: str = DEMO_ENTRY_POINT_GROUP) -> Pack:
    """The demo pack installed under `name`. Raises ConfigError listing the installed demos when
    none has that name, AgentDefinitionError naming the entry point when it fails to load."""
    found = [ep for ep in entry_points(group=group) if ep.name == name]
    if not found:
        known = ", ".join(installed_demos(group)) or "none installed"
        raise ConfigError(f"no demo named {name!r} (demos: {known})")
    ep = found[0]
    try:
        return pack_from(ep.load(), ep.value)
    except Exception as exc:
        raise AgentDefinitionError(
            f"entry point {ep.name!r} ({ep.value}) in group {group!r} failed to load: {exc}"
        ) from exc
