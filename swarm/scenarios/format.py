"""The scenario file format as pydantic models: a suite of scenarios, each a list of steps that say
what the user sends and what must happen. `Scenario.expand()` turns a table into many scenarios.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

__all__ = [
    "Expect",
    "FixtureCall",
    "OutputCheck",
    "Scenario",
    "StateCheck",
    "Step",
    "Suite",
]


class _Strict(BaseModel):
    # A misspelt key must be an error, not a silently ignored expectation.
    model_config = ConfigDict(extra="forbid")


class OutputCheck(_Strict):
    """Checks on a value (the output, or the error text). Every check given must hold."""

    contains: Any = None
    """A string: a substring of the text (JSON for structured outputs); a mapping: a subset of a
    mapping output; a list of strings: each a substring."""
    not_contains: str | list[str] | None = None
    equals: Any = None
    regex: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    """A JSON Schema the output must validate against."""
    predicate: str | None = None
    """`package.module:function` or `package.module.function`, called with the output; a falsy
    return or an AssertionError fails the step (a returned string is the reason)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @property
    def given(self) -> set[str]:
        return {("schema" if k == "schema_" else k) for k in self.model_fields_set}


class StateCheck(_Strict):
    """A state probe the agent pack exposes in `STATE`, called after the step, and its check."""

    check: str
    """The name of a probe in the agents module's `STATE` mapping."""
    args: dict[str, Any] = Field(default_factory=dict)
    expect: OutputCheck


class Expect(_Strict):
    agent: str | None = None
    """The agent that must take the task (the one that finished it, after any handoffs)."""
    routed_to: str | None = None
    """The router's own first pick, when it differs from `agent` because of a handoff."""
    out_of_scope: bool | None = None
    """True: the router must reject the text (no agent takes it)."""
    status: Literal["done", "failed", "cancelled", "rejected"] | None = None
    output: OutputCheck | None = None
    error: OutputCheck | None = None
    latency_ms: float | None = Field(default=None, gt=0)
    """Budget for the step, from submit to result, in milliseconds."""
    state: list[StateCheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Expect:
        if self.out_of_scope and (self.agent or self.routed_to):
            raise ValueError("out_of_scope: true cannot name an agent as well")
        return self

    @property
    def label(self) -> str | None:
        """The agent the step's routing is judged against: '(none)' for out of scope."""
        if self.out_of_scope:
            return NONE_LABEL
        return self.routed_to or self.agent


NONE_LABEL = "(none)"
AMBIGUOUS_LABEL = "(ambiguous)"
"""What a step got when the router found two agents too close and the task was rejected: a
label of its own in the confusion matrix, not the best candidate (which did not take it)."""


class Step(_Strict):
    user: str = Field(min_length=1)
    """What the user sends."""
    payload: dict[str, Any] = Field(default_factory=dict)
    agent: str | None = None
    """Skip routing: send the step straight to this agent."""
    expect: Expect = Field(default_factory=Expect)


class Scenario(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    table: list[dict[str, Any]] | None = None
    """Rows of values; the scenario runs once per row with `{column}` replaced in its strings."""
    steps: list[Step] = Field(min_length=1)

    # Where it came from, filled by the loader for reports (not part of the file format).
    _line: int = PrivateAttr(default=0)

    @property
    def line(self) -> int:
        return self._line

    def expand(self) -> list[Scenario]:
        """One scenario per table row (the name gets the row's values when it names none)."""
        if not self.table:
            return [self]
        out = []
        for i, row in enumerate(self.table):
            data = self.model_dump(by_alias=True, exclude={"table"}, exclude_unset=True)
            filled = _fill(data, row)
            if filled["name"] == data["name"]:
                values = ", ".join(f"{k}={v}" for k, v in row.items())
                filled["name"] = f"{data['name']} [{values or i + 1}]"
            scenario = Scenario.model_validate(filled)
            scenario._line = self._line
            out.append(scenario)
        return out


class FixtureCall(_Strict):
    fixture: str
    """The name of a fixture in the agents module's `FIXTURES` mapping."""
    args: dict[str, Any] = Field(default_factory=dict)


class Suite(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    agents: str = Field(min_length=1)
    """The module that defines the agents (`package.module` or `module:ATTRIBUTE`)."""
    router: str | None = None
    """auto, keyword or a router artifact folder; `swarm test --router` overrides it."""
    setup: list[FixtureCall] = Field(default_factory=list)
    parallel: bool = True
    """False: scenarios run one after another (they share mutable state in their services)."""
    scenarios: list[Scenario] = Field(min_length=1)

    _path: str = PrivateAttr(default="")
    _marks: Any = PrivateAttr(default=None)  # the loader's line/column map, for later errors

    @property
    def path(self) -> str:
        return self._path

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        seen: set[str] = set()
        for s in self.scenarios:
            for e in s.expand():
                if e.name in seen:
                    raise ValueError(f"two scenarios are named {e.name!r}")
                seen.add(e.name)
        return self

    def expanded(self) -> list[Scenario]:
        return [e for s in self.scenarios for e in s.expand()]


_FIELD = re.compile(r"\{(\w+)\}")


def _fill(value: Any, row: dict[str, Any]) -> Any:
    """Replace `{column}` in strings; a string that is only `{column}` takes the raw value.

    Only names in the row are replaced, so regexes such as `\\d{3}` stay as written.
    """
    if isinstance(value, str):
        whole = _FIELD.fullmatch(value)
        if whole and whole.group(1) in row:
            return row[whole.group(1)]
        return _FIELD.sub(
            lambda m: str(row[m.group(1)]) if m.group(1) in row else m.group(0), value
        )
    if isinstance(value, dict):
        return {k: _fill(v, row) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, row) for v in value]
    return value
