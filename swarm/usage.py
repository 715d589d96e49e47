"""Model tokens and what they cost: usage from the trace store's `llm` spans, summed per task,
agent, run, session and model, priced by an optional table (per model, per million tokens).
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from swarm.errors import ConfigError

if TYPE_CHECKING:
    from swarm.trace import TraceStore

__all__ = [
    "PRICES_ENV",
    "Price",
    "PriceTable",
    "Usage",
    "UsageReport",
    "call_usage",
    "ranked",
    "summarize",
    "tree_usage",
    "usage_report",
]

PRICES_ENV = "SWARM_PRICES"
"""A price table: a path to a YAML or JSON file, or the JSON itself (see `PriceTable.parse`)."""


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars (or any one currency) per million input and output tokens."""

    input: float
    output: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000


class PriceTable:
    """Model name (or shell-style pattern: `gpt-4o*`) -> `Price`; an exact name wins over a pattern,
    then the first pattern that matches, in the table's order.

    The file (YAML or JSON) maps each model to its prices per million tokens:

    ```yaml
    gpt-4o-mini: {input: 0.15, output: 0.60}
    "llama-*": {input: 0, output: 0}
    ```
    """

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self.prices = dict(prices)

    @classmethod
    def parse(cls, data: Any, *, source: str = "price table") -> PriceTable:
        """From the mapping a file holds; `ConfigError` naming the model and field on bad input."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{source}: expected a mapping of model -> {{input, output}}, got "
                f"{type(data).__name__}"
            )
        prices: dict[str, Price] = {}
        for model, entry in data.items():
            if not isinstance(entry, Mapping):
                raise ConfigError(
                    f"{source}: model {model!r}: expected {{input: N, output: N}} (per million "
                    f"tokens), got {entry!r}"
                )
            unknown = sorted(set(entry) - {"input", "output"})
            if unknown:
                raise ConfigError(
                    f"{source}: model {model!r}: unknown field {unknown[0]!r} (use input, output)"
                )
            values = []
            for name in ("input", "output"):
                value = entry.get(name)
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ConfigError(
                        f"{source}: model {model!r}: field {name!r} must be a number >= 0 "
                        f"(price per million tokens), got {value!r}"
                    )
                values.append(float(value))
            prices[str(model)] = Price(*values)
        return cls(prices)

    @classmethod
    def load(cls, path: str | Path) -> PriceTable:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read price table {path}: {exc.strerror or exc}") from None
        try:
            data = yaml.safe_load(text)  # YAML is a superset of JSON: one parser for both
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{where}: not valid YAML or JSON ({exc})") from None
        return cls.parse(data, source=str(path))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PriceTable | None:
        """`$SWARM_PRICES`: a file path, or inline JSON (starting with `{`); None when unset."""
        value = (os.environ if environ is None else environ).get(PRICES_ENV, "").strip()
        if not value:
            return None
        if value.startswith("{"):
            try:
                data = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"${PRICES_ENV}: not valid JSON ({exc.msg})") from None
            return cls.parse(data, source=f"${PRICES_ENV}")
        return cls.load(value)

    def price(self, model: str | None) -> Price | None:
        if not model:
            return None
        if model in self.prices:
            return self.prices[model]
        for pattern, price in self.prices.items():
            if fnmatch.fnmatchcase(model, pattern):
                return price
        return None


@dataclass(slots=True)
class Usage:
    """Token counts of some LLM calls, and their cost when every priced call had a price.

    `cost` is None when no call could be priced; `unpriced` counts calls whose model the table
    lacks (their tokens are in the counts, not in `cost`); `without_usage` counts calls whose
    response reported no usage (failed calls, or a server that does not count).
    """

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    unpriced: int = 0
    without_usage: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.unpriced += other.unpriced
        self.without_usage += other.without_usage
        if other.cost is not None:
            self.cost = (self.cost or 0.0) + other.cost

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cost": None if self.cost is None else round(self.cost, 8),
            "unpriced_calls": self.unpriced,
            "calls_without_usage": self.without_usage,
        }


@dataclass(slots=True)
class UsageReport:
    """Usage in total and grouped; each group maps a key (task id, agent name, run id, session id,
    model) to its `Usage`. Calls outside any session are under the key `None`."""

    total: Usage = field(default_factory=Usage)
    by_task: dict[str, Usage] = field(default_factory=dict)
    by_agent: dict[str, Usage] = field(default_factory=dict)
    by_run: dict[str, Usage] = field(default_factory=dict)
    by_session: dict[str | None, Usage] = field(default_factory=dict)
    by_model: dict[str, Usage] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def group(items: Mapping[Any, Usage]) -> list[dict[str, Any]]:
            return [{"key": k, **u.to_json()} for k, u in ranked(items)]

        return {
            "total": self.total.to_json(),
            "by_agent": group(self.by_agent),
            "by_model": group(self.by_model),
            "by_run": group(self.by_run),
            "by_session": group(self.by_session),
            "by_task": group(self.by_task),
        }


def call_usage(span: Mapping[str, Any], prices: PriceTable | None = None) -> tuple[str, Usage]:
    """(model, usage) of one `llm` span row; the model is the one that answered, else the one
    asked for (the span's name)."""
    attrs = span.get("attributes") or {}
    response = attrs.get("response")
    answered = response.get("model") if isinstance(response, Mapping) else None
    model = str(answered or span.get("name") or "?")
    one = Usage(calls=1)
    tokens_in, tokens_out = attrs.get("prompt_tokens"), attrs.get("completion_tokens")
    if not isinstance(tokens_in, int) and not isinstance(tokens_out, int):
        one.without_usage = 1
        return model, one
    one.input_tokens = tokens_in if isinstance(tokens_in, int) else 0
    one.output_tokens = tokens_out if isinstance(tokens_out, int) else 0
    if prices is not None:
        price = prices.price(model) or prices.price(str(span.get("name") or ""))
        if price is None:
            one.unpriced = 1
        else:
            one.cost = price.cost(one.input_tokens, one.output_tokens)
    return model, one


def summarize(
    llm_spans: Iterable[Mapping[str, Any]],
    *,
    agent_spans: Iterable[Mapping[str, Any]] = (),
    tasks: Iterable[Mapping[str, Any]] = (),
    prices: PriceTable | None = None,
) -> UsageReport:
    """Sum `llm` span rows (as `TraceStore.spans` returns them). A call belongs to the agent whose
    `agent` span encloses it (so each agent of a handoff gets its own calls), else to the task's
    final agent; `tasks` rows give the agent and session of each task."""
    parents = {s["id"]: s for s in agent_spans}
    task_rows = {t["id"]: t for t in tasks}
    report = UsageReport()
    for span in llm_spans:
        model, one = call_usage(span, prices)
        task = task_rows.get(span["task_id"], {})
        agent = _enclosing_agent(span, parents) or task.get("agent") or "?"
        report.total.add(one)
        report.by_task.setdefault(str(span["task_id"]), Usage()).add(one)
        report.by_agent.setdefault(str(agent), Usage()).add(one)
        report.by_run.setdefault(str(span.get("run_id") or "?"), Usage()).add(one)
        report.by_session.setdefault(task.get("session_id"), Usage()).add(one)
        report.by_model.setdefault(model, Usage()).add(one)
    return report


def usage_report(
    store: TraceStore, *, run_id: str | None = None, prices: PriceTable | None = None
) -> UsageReport:
    """The usage of one run, or of everything in the store, read through its public API."""
    return summarize(
        store.spans(run_id=run_id, kind="llm"),
        agent_spans=store.spans(run_id=run_id, kind="agent"),
        tasks=store.tasks(run_id=run_id, limit=None),
        prices=prices,
    )


def tree_usage(tree: Mapping[str, Any], prices: PriceTable | None = None) -> Usage:
    """The usage of a task and of the child tasks it delegated (a `TraceStore.task_tree`)."""
    total = Usage()
    for span in tree.get("spans") or []:
        if span.get("kind") == "llm":
            total.add(call_usage(span, prices)[1])
    for child in tree.get("children") or []:
        total.add(tree_usage(child, prices))
    return total


def _enclosing_agent(
    span: Mapping[str, Any], agents: Mapping[str, Mapping[str, Any]]
) -> str | None:
    seen: set[str] = set()
    parent = span.get("parent_id")
    while parent is not None and parent in agents and parent not in seen:
        seen.add(parent)
        row = agents[parent]
        name = str(row.get("name") or "")
        if not name.startswith("handoff:"):
            return name
        parent = row.get("parent_id")
    return None


def ranked(items: Mapping[Any, Usage]) -> list[tuple[Any, Usage]]:
    """Most tokens first, then by key, so output is stable."""
    return sorted(items.items(), key=lambda kv: (-kv[1].total_tokens, str(kv[0])))
