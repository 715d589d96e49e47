"""Importing the module an `--agents` value names (a dotted module or a `.py` file), with every
failure one line that names the file and line, or where the module was looked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType, TracebackType

from swarm.errors import AgentDefinitionError, ConfigError

__all__ = ["import_agents_module", "split_spec"]


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
