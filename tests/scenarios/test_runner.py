"""Running suites: checks that pass and fail with reasons, fixtures and state, reports (console,
JUnit XML, HTML), and the project's own help-desk suites with the keyword router."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from swarm.errors import ScenarioError
from swarm.scenarios import (
    ScenarioRunner,
    TestReport,
    html_report,
    junit_xml,
    load_suite,
    load_suites,
    parse_suite,
    select_scenarios,
)
from swarm.scenarios.runner import AgentPack, check_suite
from swarm.scenarios.views import ReportView
from swarm.trace import TraceStore

SUITE = """
name: shop
tags: [unit]
agents: {pack}
router: keyword
setup:
  - fixture: seed
    args: {{items: {{lamp: 3}}}}
parallel: false
scenarios:
  - name: buying lowers the stock
    steps:
      - user: buy a lamp
        expect:
          agent: shop
          output: {{regex: "^bought lamp for \\\\d+$", not_contains: error}}
          latency_ms: 5000
          state:
            - {{check: stock, args: {{item: lamp}}, expect: {{equals: 2}}}}
  - name: weather is sunny
    steps:
      - user: will it rain tomorrow
        expect:
          agent: weather
          output:
            contains: {{forecast: sunny}}
            predicate: {pack}:is_sunny
            schema: {{type: object, required: [forecast, city]}}
  - name: wrong desk
    steps:
      - user: what is the weather
        expect: {{agent: shop}}
      - user: buy a chair
        expect: {{agent: shop}}
  - name: bad output and state
    steps:
      - user: buy a chair
        expect:
          output: {{contains: table, schema: {{type: object}}}}
          state:
            - {{check: stock, args: {{item: chair}}, expect: {{equals: 5}}}}
  - name: nobody takes it
    steps:
      - user: recite a sonnet
        expect: {{out_of_scope: true}}
"""


def _run(suite_text: str, write: Callable[[str, str], Path], db: str | None = None) -> TestReport:
    path = write("shop.yaml", suite_text)
    loaded = load_suites([path])
    assert not loaded.errors, loaded.errors
    return ScenarioRunner(db=db).run_sync(loaded.suites)


@pytest.fixture
def report(pack: str, write: Callable[[str, str], Path], db_url: str) -> TestReport:
    return _run(SUITE.format(pack=pack), write, db_url)


def test_passes_and_failures_with_reasons(report: TestReport) -> None:
    by_name = {s.name: s for s in report.scenarios}
    assert by_name["buying lowers the stock"].passed, by_name["buying lowers the stock"].reasons
    assert by_name["weather is sunny"].passed, by_name["weather is sunny"].reasons
    assert by_name["nobody takes it"].passed, by_name["nobody takes it"].reasons
    wrong = by_name["wrong desk"]
    assert not wrong.passed
    assert wrong.reasons[0].startswith(
        "step 1 ('what is the weather'): expected agent shop, got weather (weather ("
    )
    assert wrong.reasons[-1] == "1 later step not run"
    bad = by_name["bad output and state"].reasons
    assert any("output does not contain 'table': bought chair for" in r for r in bad)
    assert any("output does not match the schema at (root)" in r for r in bad)
    assert any("state stock expected to equal 5, got -1" in r for r in bad)
    assert not report.passed
    assert report.counts == {
        "scenarios": 5,
        "passed": 3,
        "failed": 2,
        "suite_errors": 0,
        "load_errors": 0,
    }


def test_every_suite_is_a_recorded_test_run(report: TestReport, db_url: str) -> None:
    (suite,) = report.suites
    assert suite.router == "keyword" and suite.router_version == "keyword"
    with TraceStore(db_url) as store:
        run = store.run(suite.run_id or "")
        assert run is not None and run["kind"] == "test"
        assert run["meta"]["suite"] == "shop" and run["router"] == "keyword"
        assert (
            len(store.tasks(run_id=suite.run_id, roots_only=True, limit=None)) == 5
        )  # one step not run
    failed_step = next(s for s in report.steps if s.failures)
    assert failed_step.trace is not None and failed_step.trace["id"] == failed_step.task_id


def test_console_summary(report: TestReport) -> None:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(ReportView(report))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "FAILED · 3/5 scenarios passed" in text
    assert "routing accuracy" in text and "confusion (expected" in text
    assert "expected agent" in text and "got weather (weather (1.00))" in text
    assert "latency p50" in text and "router keyword (keyword)" in text


def test_junit_xml_parses_and_counts(report: TestReport) -> None:
    report.load_errors.append("x.yaml:1:1: (document): invalid YAML: boom")
    root = ET.fromstring(junit_xml(report))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "2", "1")
    suite = root.find("testsuite[@name='shop']")
    assert suite is not None and suite.get("tests") == "5" and suite.get("failures") == "2"
    case = suite.find("testcase[@name='wrong desk']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and "expected agent shop" in (failure.get("message") or "")
    assert suite.find("testcase[@name='weather is sunny']/failure") is None
    load = root.find("testsuite[@name='(files that did not load)']/testcase/error")
    assert load is not None and "invalid YAML" in (load.get("message") or "")


def test_html_report_is_self_contained_with_plots(report: TestReport) -> None:
    page = html_report(report)
    assert "http://" not in page and "https://" not in page
    assert page.count("<img") == 3 and page.count("src='data:image/png;base64,") == 3
    assert "confusion matrix" in page and "reliability" in page and "latency" in page
    assert "expected agent shop, got weather" in page
    assert "trace of step 1" in page  # failures come with their trace
    assert "<script" not in page


def test_names_the_pack_lacks_are_located(pack: str, write: Callable[[str, str], Path]) -> None:
    text = (
        SUITE.format(pack=pack)
        .replace("fixture: seed", "fixture: sed")
        .replace("{agent: shop}", "{agent: shoop}", 1)
    )
    suite = parse_suite(text, "shop.yaml")
    from swarm.agents import AgentRegistry

    registry = AgentRegistry()
    registry.load_module(pack)
    with pytest.raises(ScenarioError) as info:
        check_suite(suite, registry, AgentPack.of(pack))
    msg = str(info.value)
    assert msg.startswith("shop.yaml:7:14: setup[0].fixture: unknown fixture 'sed'")
    assert "shop.yaml:32:25: scenarios[2].steps[0].expect.agent: unknown agent 'shoop'" in msg


def test_a_suite_that_cannot_start_fails_alone(
    pack: str, write: Callable[[str, str], Path]
) -> None:
    write("a.yaml", SUITE.format(pack=pack))
    write("b.yaml", SUITE.format(pack="no_such_module_here").replace("name: shop", "name: gone"))
    loaded = load_suites([write("c.yaml", "name: [").parent])
    report = ScenarioRunner().run_sync(loaded.suites, load_errors=loaded.errors)
    gone = next(s for s in report.suites if s.name == "gone")
    assert gone.error is not None and "no module named 'no_such_module_here'" in gone.error
    assert all(not s.passed for s in gone.scenarios)
    shop = next(s for s in report.suites if s.name == "shop")
    assert sum(s.passed for s in shop.scenarios) == 3
    assert len(report.load_errors) == 1


def test_project_keyword_suites_pass() -> None:
    """The project's suites written for the keyword router (the learned-router ones, such as
    bank_routing.yaml, run through the pytest plugin with their own `router: auto`)."""
    root = Path(__file__).resolve().parents[2] / "examples" / "swarm_examples"
    suites = [load_suite(f) for f in sorted(root.glob("*/suites/*.yaml"))]
    suites = [s for s in suites if s.router == "keyword"]
    report = ScenarioRunner(router="keyword").run_sync(suites)
    failures = [(s.id, s.reasons) for s in report.scenarios if not s.passed]
    assert not failures
    assert len(report.scenarios) >= 10


@pytest.mark.slow
def test_help_desk_suites_with_the_learned_router(tmp_path: Path) -> None:
    routing = pytest.importorskip("swarm.router")
    if not hasattr(routing, "ensure_router"):
        pytest.skip("swarm.router has no ensure_router yet")
    root = Path(__file__).resolve().parents[2] / "examples" / "swarm_examples" / "quickstart"
    suites = [load_suite(f) for f in sorted(root.glob("suites/*.yaml"))]
    runner = ScenarioRunner(router="auto", models_dir=str(tmp_path / "models"))
    # Out-of-scope rejection depends on the router room's threshold training (in progress):
    # the in-scope desks are what this test holds the learned router to.
    report = runner.run_sync(suites, select_scenarios("not out_of_scope"))
    assert report.suites[0].router == "auto"
    assert not [(s.id, s.reasons) for s in report.scenarios if not s.passed]
