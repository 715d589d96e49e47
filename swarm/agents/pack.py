"""A pack: what an agents module exports in one object (agents, the router's extra training rows,
out-of-scope requests, scenario fixtures and state checks, demo requests, its suites folder).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from swarm.agents.base import Agent
from swarm.errors import AgentDefinitionError, ConfigError

__all__ = ["PACK_ATTRIBUTE", "Pack", "import_agents_module", "load_pack", "pack_from", "split_spec"]

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
    `module:attribute` (a `Pack`, or agents); `module` may be a `.py` file. Raises ConfigError
    when it cannot be found or defines no agents, AgentDefinitionError naming file:line when it
    raises while imported (see `import_agents_module`)."""
    module = import_agents_module(path)  # one line naming file:line on any import failure
    module_name, attr = split_spec(path)
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


# ---- importing the module an `--agents` value names ---------------------------------------------


def import_agents_module(spec: str) -> ModuleType:
    """The module an `--agents` value names: `package.module`, or a file such as
    `./my_agents.py` (imported under its stem, its folder first on `sys.path` so that it can
    import its neighbours); either may end in `:attribute`, which is not looked up here.

    Every way the import can fail is one line, never a traceback: `ConfigError` when the
    module or file is not found (saying where it looked: the current folder, PYTHONPATH, the
    installed packages), `AgentDefinitionError` naming `file:line` when the module raises
    while it is imported (a syntax error, a `NameError`, a missing dependency …).
    """
    target, _ = split_spec(spec)
    if _is_file(target):
        return _import_file(Path(target))
    if not target or not all(part.isidentifier() for part in target.split(".")):
        raise ConfigError(
            f"agents {spec!r}: expected a dotted module path (my_package.agents) or a .py file "
            "(./my_agents.py), optionally followed by :ATTRIBUTE"
        )
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (target == exc.name or target.startswith(exc.name + ".")):
            raise ConfigError(_not_found(target, exc.name)) from None
        raise AgentDefinitionError(_import_failed(target, exc)) from None
    except Exception as exc:  # anything the module's own code raises while it is imported
        raise AgentDefinitionError(_import_failed(target, exc)) from None


def split_spec(spec: str) -> tuple[str, str]:
    """`pkg.mod:ATTR` -> (`pkg.mod`, `ATTR`); a Windows drive (`C:\\x.py`) is not an attribute."""
    head, sep, attr = spec.rpartition(":")
    if not sep or not attr.isidentifier() or (len(head) == 1 and head.isalpha()):
        return spec, ""
    return head, attr


def _is_file(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ConfigError(f"agents file {str(path)!r} not found (in {os.getcwd()})")
    path = path.resolve()
    name = path.stem
    if not name.isidentifier():
        raise ConfigError(f"agents file {str(path)!r}: {name!r} is not a valid module name")
    loaded = sys.modules.get(name)
    if loaded is not None:
        if getattr(loaded, "__file__", None) and Path(loaded.__file__ or "").resolve() == path:
            return loaded
        raise ConfigError(
            f"agents file {str(path)!r}: a module named {name!r} is already imported from "
            f"{getattr(loaded, '__file__', None) or 'the interpreter'}; rename the file"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"agents file {str(path)!r} cannot be imported as a Python module")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its neighbours import as they would under `python file.py`
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pickling, dataclasses and `resume` find it by name
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, Exception):
            raise AgentDefinitionError(_import_failed(name, exc)) from None
        raise
    return module


def _not_found(target: str, missing: str) -> str:
    places = []
    cwd = os.getcwd()
    if "" in sys.path or cwd in sys.path:
        places.append(f"the current folder ({cwd})")
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    places.append(f"PYTHONPATH ({os.pathsep.join(pythonpath)})" if pythonpath else "PYTHONPATH")
    places.append("the installed packages")
    what = f"no module named {missing!r}"
    if missing != target:
        what += f" (the package of {target!r})"
    looked = f"{', '.join(places[:-1])} and {places[-1]}"
    return (
        f"cannot import agents module {target!r}: {what}; looked in {looked}. "
        f"Give a file path (./{target.replace('.', '/')}.py) or add its folder to PYTHONPATH"
    )


def _import_failed(target: str, exc: BaseException) -> str:
    """`file:line: agents module 'x' failed to import: NameError: name 'y' is not defined`."""
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else target
        if exc.filename and exc.offset:
            where += f":{exc.offset}"
        detail = f"{type(exc).__name__}: {exc.msg}"
    else:
        where = _where_raised(exc.__traceback__, target)
        lines = str(exc).strip().splitlines()
        detail = type(exc).__name__ + (f": {lines[0]}" if lines else "")
    return f"{where}: agents module {target!r} failed to import: {detail}"


def _where_raised(tb: TracebackType | None, target: str) -> str:
    """`file:line` of the user's code that raised: the deepest frame outside the import
    machinery, swarm itself and the installed packages (else the deepest frame at all)."""
    frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith("<")]
    library = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix, _SWARM_DIR})
    own = [f for f in frames if not f.filename.startswith(library)]
    pick = (own or frames)[-1:]
    return f"{pick[0].filename}:{pick[0].lineno}" if pick else target


_SWARM_DIR = str(Path(__file__).resolve().parents[1]) + os.sep


def pack_from(obj: Any, where: str) -> Pack:
    """A `Pack` from what a module path or an entry point names: a Pack as it is; a module's
    `PACK`; otherwise the old module-level names (AGENTS, OUT_OF_SCOPE, FIXTURES, STATE, setup,
    teardown, DEMO_REQUESTS, DEMO_TRACE) or a bare agent, list or factory of agents.

    This is the one place those module-level names are read."""
    module_path = split_spec(where)[0]
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
