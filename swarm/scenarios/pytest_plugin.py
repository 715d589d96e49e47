"""A pytest plugin: YAML scenario suites are collected as tests, one item per scenario, so a
project's own test run includes them. A suite has top-level `agents:` and `scenarios:` keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swarm.errors import ScenarioError
from swarm.scenarios.format import Scenario, Suite
from swarm.scenarios.loader import load_suite
from swarm.scenarios.runner import ScenarioResult, ScenarioRunner, SuiteResult

__all__ = ["ScenarioFile", "ScenarioItem"]

_SUITE_KEYS = (re.compile(r"^agents\s*:", re.M), re.compile(r"^scenarios\s*:", re.M))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("swarm", "swarm scenario suites")
    group.addoption(
        "--swarm-router",
        default=None,
        help="Router for scenario suites: auto, keyword or a folder (default: each suite's).",
    )
    group.addoption("--swarm-db", default=None, help="Record scenario runs in this trace store.")
    parser.addini("swarm_scenarios", "collect YAML scenario suites (true/false)", default="true")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    if str(parent.config.getini("swarm_scenarios")).lower() in ("false", "0", "no"):
        return None
    try:
        head = file_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not all(p.search(head) for p in _SUITE_KEYS):
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):
    """One suite. Its selected scenarios run together, once, when the first of them is reached."""

    suite: Suite | None = None
    _outcome: SuiteResult | None = None

    def collect(self) -> Iterator[ScenarioItem]:
        try:
            self.suite = load_suite(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        for scenario in self.suite.expanded():
            yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)

    def outcome(self) -> SuiteResult:
        if self._outcome is None:
            assert self.suite is not None
            # Run only what survived -k/-m deselection.
            selected = {
                i.name
                for i in self.session.items
                if isinstance(i, ScenarioItem) and i.parent is self
            }
            config = self.config
            runner = ScenarioRunner(
                router=config.getoption("--swarm-router"), db=config.getoption("--swarm-db")
            )
            report = runner.run_sync(
                [self.suite], select=lambda _suite, sc: sc.name in selected or not selected
            )
            self._outcome = (
                report.suites[0]
                if report.suites
                else SuiteResult(self.suite.name, str(self.path), "-")
            )
        return self._outcome


class ScenarioFailed(Exception):
    def __init__(self, result: ScenarioResult) -> None:
        super().__init__("\n".join(result.reasons))
        self.result = result


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        for tag in scenario.tags:
            if re.fullmatch(r"\w+", tag):
                self.keywords[tag] = True

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, ScenarioFile)
        outcome = parent.outcome()
        if outcome.error is not None:
            raise ScenarioFailed(
                ScenarioResult(outcome.name, self.name, str(self.path), 0, [], error=outcome.error)
            )
        for result in outcome.scenarios:
            if result.name == self.name:
                if not result.passed:
                    raise ScenarioFailed(result)
                return
        raise ScenarioFailed(
            ScenarioResult(outcome.name, self.name, str(self.path), 0, [], error="did not run")
        )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            r = excinfo.value.result
            return f"scenario {r.id} failed:\n" + "\n".join(f"  - {x}" for x in r.reasons)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, max(self.scenario.line - 1, 0), f"scenario: {self.name}"
