"""Checking a step's result against what its scenario expects. Each check that fails gives one
line a person can act on ("expected agent billing, got orders (routed 0.41)"); passing gives none.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from typing import Any

from swarm.errors import ScenarioError
from swarm.models import Result, TaskStatus
from swarm.scenarios.format import Expect, OutputCheck

__all__ = ["check_result", "check_value", "outcome", "rejected_as_ambiguous", "resolve_callable"]


def rejected_as_ambiguous(result: Result) -> bool:
    """The router found two agents too close to choose, and the task was rejected for it (the
    decision still names the best candidate, but no agent took the task)."""
    d = result.decision
    return result.status is TaskStatus.REJECTED and d is not None and d.ambiguous


def routed_agent(result: Result) -> str | None:
    """The agent the router sent the task to (None: out of scope, rejected as ambiguous, or
    not routed)."""
    d = result.decision
    if d is None or d.out_of_scope or rejected_as_ambiguous(result):
        return None
    return d.agent


def outcome(result: Result) -> str:
    """What happened to the task, in the words the trace would use: `billing took it`,
    `rejected: out of scope (confidence 0.21)`, `rejected: ambiguous between loans (0.41) and
    cards (0.39)`, `failed at billing`, `cancelled`."""
    d = result.decision
    status = result.status
    if status is TaskStatus.REJECTED:
        if d is not None and d.ambiguous and len(d.candidates) >= 2:
            (a, pa), (b, pb) = d.candidates[:2]
            return f"rejected: ambiguous between {a} ({pa:.2f}) and {b} ({pb:.2f})"
        return f"rejected: {d.reason}" if d is not None else "rejected"
    taker = result.agent or routed_agent(result)
    if status is TaskStatus.DONE:
        return f"{taker} took it" if taker else "done"
    return f"{status.value} at {taker}" if taker else status.value


def check_result(expect: Expect, result: Result, latency_ms: float) -> list[str]:
    """The reasons `result` does not meet `expect` (empty when it does)."""
    reasons: list[str] = []
    d = result.decision
    routed = routed_agent(result)
    how = f" ({d.reason})" if d is not None else ""
    ambiguous = rejected_as_ambiguous(result)
    if expect.out_of_scope is True:
        if ambiguous:
            reasons.append(f"expected out of scope, got {outcome(result)}")
        elif d is None or not d.out_of_scope:
            taken = result.agent or routed or "an agent"
            reasons.append(f"expected out of scope, but {taken} took it{how}")
    elif expect.out_of_scope is False and d is not None and d.out_of_scope:
        reasons.append(f"expected an agent to take it, but it was rejected{how}")
    if expect.routed_to is not None and routed != expect.routed_to:
        got = outcome(result) if ambiguous else f"{routed or 'none'}{how}"
        reasons.append(f"expected the router to pick {expect.routed_to}, got {got}")
    if expect.agent is not None and result.agent != expect.agent:
        chain = f" via {' -> '.join(result.hops)}" if len(result.hops) > 1 else ""
        got = outcome(result) if ambiguous else f"{result.agent or 'none'}{chain}{how}"
        reasons.append(f"expected agent {expect.agent}, got {got}")
    status = expect.status
    if status is None and expect.out_of_scope:
        status = "rejected"
    elif status is None and expect.error is None:
        status = "done"  # a step that says nothing about status must at least succeed
    if status is not None and result.status.value != status:
        detail = f": {result.error}" if result.error else ""
        reasons.append(f"expected status {status}, got {result.status.value}{detail}")
    if expect.output is not None:
        reasons += [f"output {r}" for r in check_value(expect.output, result.output)]
    if expect.error is not None:
        reasons += [f"error {r}" for r in check_value(expect.error, result.error)]
    if expect.latency_ms is not None and latency_ms > expect.latency_ms:
        reasons.append(f"took {latency_ms:.0f} ms, over the {expect.latency_ms:g} ms budget")
    return reasons


def check_value(check: OutputCheck, value: Any) -> list[str]:
    """The reasons `value` fails `check`."""
    reasons: list[str] = []
    text = value if isinstance(value, str) else _json(value)
    given = check.given
    if "contains" in given:
        reasons += _contains(check.contains, value, text)
    if "not_contains" in given and check.not_contains is not None:
        for part in (
            [check.not_contains] if isinstance(check.not_contains, str) else check.not_contains
        ):
            if part in text:
                reasons.append(f"contains {part!r}, which it must not: {_short(text)}")
    if "equals" in given and value != check.equals:
        reasons.append(f"expected to equal {_short(_json(check.equals))}, got {_short(text)}")
    if check.regex is not None and re.search(check.regex, text) is None:
        reasons.append(f"does not match /{check.regex}/: {_short(text)}")
    if check.schema_ is not None:
        reasons += _schema(check.schema_, value)
    if check.predicate is not None:
        reasons += _predicate(check.predicate, value)
    return reasons


def _contains(expected: Any, value: Any, text: str) -> list[str]:
    if isinstance(expected, dict):
        if not isinstance(value, dict):
            return [f"expected a mapping containing {_short(_json(expected))}, got {_short(text)}"]
        missing = {k: v for k, v in expected.items() if value.get(k, _MISSING) != v}
        if missing:
            return [f"lacks {_short(_json(missing))}: {_short(text)}"]
        return []
    parts = expected if isinstance(expected, list) else [expected]
    return [f"does not contain {p!r}: {_short(text)}" for p in map(str, parts) if p not in text]


_MISSING = object()


def _schema(schema: dict[str, Any], value: Any) -> list[str]:
    try:
        import jsonschema  # lazy: only suites with `schema:` checks need it
    except ImportError:  # pragma: no cover - depends on the environment
        return ["has a `schema` check, but the jsonschema package is not installed"]
    try:
        validator = jsonschema.validators.validator_for(schema)(schema)
    except jsonschema.SchemaError as exc:
        return [f"schema is not a valid JSON Schema: {exc.message}"]
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    out = []
    for e in errors[:3]:
        where = "/".join(map(str, e.absolute_path)) or "(root)"
        out.append(f"does not match the schema at {where}: {e.message}")
    return out


def _predicate(path: str, value: Any) -> list[str]:
    fn = resolve_callable(path)
    try:
        verdict = fn(value)
    except AssertionError as exc:
        return [f"fails {path}: {exc or 'assertion failed'}"]
    except Exception as exc:
        return [f"predicate {path} raised {type(exc).__name__}: {exc}"]
    if isinstance(verdict, str):
        return [f"fails {path}: {verdict}"] if verdict else []
    return [] if verdict else [f"fails {path}: {_short(_json(value))}"]


def resolve_callable(path: str) -> Callable[..., Any]:
    """`pkg.mod:func`, `pkg.mod.func` or `pkg.mod:Class.method` -> the callable."""
    module_name, _, attr = path.partition(":")
    if not attr:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ScenarioError(f"predicate {path!r}: expected `package.module:function`")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ScenarioError(f"predicate {path!r}: cannot import {module_name}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ScenarioError(f"predicate {path!r}: {module_name} has no {attr}") from None
    if not callable(obj):
        raise ScenarioError(f"predicate {path!r} is not callable")
    return obj  # type: ignore[no-any-return]


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=repr)


def _short(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
