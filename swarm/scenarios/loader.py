"""Reading scenario files: YAML composed into nodes that keep their line and column, validated by
the pydantic format, with every error mapped back to `file:line:column: field: what was expected`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import SafeConstructor

from swarm.errors import ScenarioError
from swarm.scenarios.format import Suite

__all__ = ["Loaded", "Location", "collect_files", "load_suite", "load_suites", "parse_suite"]

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a value sits in a file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(slots=True)
class _Marks:
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def find(self, loc: Path_, *, key: bool = False) -> tuple[int, int]:
        """The mark of `loc`, or of its nearest ancestor the file has (a missing field)."""
        if key and loc in self.keys:
            return self.keys[loc]
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.values:
                return self.values[loc[:n]]
        return (1, 1)


@dataclass(slots=True)
class Loaded:
    """What `load_suites` found: the suites that loaded, and an error for each file that did not."""

    suites: list[Suite] = field(default_factory=list)
    errors: list[ScenarioError] = field(default_factory=list)


def collect_files(paths: Iterable[str | Path]) -> list[Path]:
    """The YAML files named, and those under the folders named (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml") and f.is_file())
        elif p.exists():
            out.append(p)
        else:
            raise ScenarioError(f"{p}: no such file or folder")
    return out


def load_suites(paths: Iterable[str | Path]) -> Loaded:
    """Load every suite under `paths`; a malformed file becomes an error, the others still load."""
    loaded = Loaded()
    for f in collect_files(paths):
        try:
            loaded.suites.append(load_suite(f))
        except ScenarioError as exc:
            loaded.errors.append(exc)
    return loaded


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}:1:1: not UTF-8 text ({exc.reason})") from exc
    return parse_suite(text, str(path))


def parse_suite(text: str, file: str = "<string>") -> Suite:
    """Parse and validate one suite; raise `ScenarioError` naming file:line:column and field."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "cannot be parsed"
        raise _error(file, line, col, "(document)", f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise _error(file, 1, 1, "(document)", f"invalid YAML: {exc}") from None
    if node is None or not isinstance(node, yaml.MappingNode):
        line, col = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        raise _error(
            file, line, col, "(document)", "expected a mapping with name, agents and scenarios"
        )
    marks = _Marks()
    try:
        data = _build(node, (), marks, SafeConstructor())
    except _DuplicateKey as dup:
        same_line = dup.first[0] == dup.at[0]
        first = f" (first at {'column' if same_line else 'line'} {dup.first[same_line]})"
        raise _error(file, *dup.at, field_name(dup.path), "duplicate key" + first) from None
    except yaml.MarkedYAMLError as exc:  # a bad timestamp, a merge of a non-mapping …
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise _error(file, line, col, "(document)", f"invalid YAML: {exc.problem}") from None
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise _from_validation(exc, file, marks) from None
    suite._path = file
    suite._marks = marks
    for i, scenario in enumerate(suite.scenarios):
        scenario._line = marks.find(("scenarios", i))[0]
    return suite


def locate(suite: Suite, loc: Sequence[str | int]) -> Location:
    """Where `loc` (a path into the file's data) is in the suite's file."""
    marks: _Marks = suite._marks or _Marks()
    line, col = marks.find(tuple(loc))
    return Location(suite.path or "<string>", line, col)


def field_name(loc: Sequence[str | int]) -> str:
    """`scenarios[0].steps[1].expect.agent` for a pydantic `loc`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


# ---- building data with marks ------------------------------------------------------------------


class _DuplicateKey(Exception):
    def __init__(self, path: Path_, at: tuple[int, int], first: tuple[int, int]) -> None:
        self.path, self.at, self.first = path, at, first


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _build(node: yaml.Node, path: Path_, marks: _Marks, ctor: SafeConstructor) -> Any:
    """Plain data from `node`, recording each value's and key's line and column in `marks`.

    Raises `_DuplicateKey` for a key written twice in one mapping (PyYAML keeps the last one and
    drops the first silently). Keys a `<<: *anchor` merge brings in may be overridden: that is
    what a merge is for.
    """
    marks.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        written = {id(k) for k, _ in node.value if k.tag != _MERGE_TAG}
        ctor.flatten_mapping(node)  # `<<: *anchor` merges
        out: dict[Any, Any] = {}
        seen: dict[Any, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            key = ctor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                key = str(key)
            at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if id(key_node) in written:
                if key in seen:
                    raise _DuplicateKey((*path, key), at, seen[key])
                seen[key] = at
            marks.keys[(*path, key)] = at
            out[key] = _build(value_node, (*path, key), marks, ctor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(n, (*path, i), marks, ctor) for i, n in enumerate(node.value)]
    return ctor.construct_object(node, deep=True)


# ---- validation errors -------------------------------------------------------------------------


def _error(file: str, line: int, col: int, fld: str, message: str) -> ScenarioError:
    exc = ScenarioError(f"{file}:{line}:{col}: {fld}: {message}")
    exc.location = Location(file, line, col)  # type: ignore[attr-defined]
    exc.field = fld  # type: ignore[attr-defined]
    return exc


def _from_validation(exc: ValidationError, file: str, marks: _Marks) -> ScenarioError:
    lines = []
    first: tuple[int, int, str] | None = None
    for err in exc.errors():
        kind, raw = err["type"], err["loc"]
        # The last part of an unknown-field error is the user's own key, whatever it looks like.
        loc = tuple(
            p
            for i, p in enumerate(raw)
            if not _is_union_tag(p) or (kind == "extra_forbidden" and i == len(raw) - 1)
        )
        line, col = marks.find(loc, key=kind == "extra_forbidden")
        fld = field_name(loc)
        lines.append(f"{file}:{line}:{col}: {fld}: {_explain(err, loc)}")
        if first is None:
            first = (line, col, fld)
    assert first is not None
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    out = ScenarioError(lines[0] + more + ("\n" + "\n".join(lines[1:]) if more else ""))
    out.location = Location(file, first[0], first[1])  # type: ignore[attr-defined]
    out.field = first[2]  # type: ignore[attr-defined]
    out.problems = lines  # type: ignore[attr-defined]
    return out


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the union member's type into `loc` (e.g. 'str', 'list[str]'): not a field.
    return isinstance(part, str) and ("[" in part or part in _TYPE_NAMES)


_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "dict", "list", "none", "literal"})


def _explain(err: Any, loc: Path_) -> str:
    kind, msg, given = err["type"], err["msg"], err.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1])
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return f"unknown field {loc[-1]!r}{hint}"
    msg = msg.replace("Value error, ", "")
    if msg.startswith("Input should be "):
        msg = "expected " + msg[len("Input should be ") :]
    if not isinstance(given, dict | list):
        shown = repr(given)
        msg += f", got {shown if len(shown) <= 40 else shown[:37] + '...'}"
    else:
        msg += f", got a {'mapping' if isinstance(given, dict) else 'list'}"
    return msg


def _fields_at(loc: Path_) -> list[str]:
    """The field names the model at `loc` accepts (for 'unknown field' hints)."""
    model: Any = Suite
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        info = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if info is None:
            return []
        model = _inner_model(info.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(f.alias or name for name, f in model.model_fields.items())
    return []


def _inner_model(annotation: Any) -> Any:
    """`list[Step] | None` -> Step."""
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            inner = _inner_model(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
        return None
    return annotation
