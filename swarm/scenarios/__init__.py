"""Scenario suites and replay: YAML files that say what a user asks and what must happen, run
through the scheduler and router, reported for people and CI; recorded runs replayed and diffed.
"""

from swarm.scenarios.format import (
    Expect,
    FixtureCall,
    OutputCheck,
    Scenario,
    StateCheck,
    Step,
    Suite,
)
from swarm.scenarios.html import html_report, write_html
from swarm.scenarios.junit import junit_xml, write_junit
from swarm.scenarios.loader import Loaded, collect_files, load_suite, load_suites, parse_suite
from swarm.scenarios.metrics import Metrics
from swarm.scenarios.replay import (
    TOOL_REPLAY_SERVICE,
    Change,
    ReplayOutcome,
    RunDiff,
    ToolReplay,
    diff_runs,
    replay_run,
    save_suite,
    suite_from_run,
)
from swarm.scenarios.runner import (
    AgentPack,
    ScenarioResult,
    ScenarioRunner,
    StepResult,
    SuiteResult,
    TestReport,
    default_router_factory,
    select_scenarios,
)

__all__ = [
    "TOOL_REPLAY_SERVICE",
    "AgentPack",
    "Change",
    "Expect",
    "FixtureCall",
    "Loaded",
    "Metrics",
    "OutputCheck",
    "ReplayOutcome",
    "RunDiff",
    "Scenario",
    "ScenarioResult",
    "ScenarioRunner",
    "StateCheck",
    "Step",
    "StepResult",
    "Suite",
    "SuiteResult",
    "TestReport",
    "ToolReplay",
    "collect_files",
    "default_router_factory",
    "diff_runs",
    "html_report",
    "junit_xml",
    "load_suite",
    "load_suites",
    "parse_suite",
    "replay_run",
    "save_suite",
    "select_scenarios",
    "suite_from_run",
    "write_html",
    "write_junit",
]
