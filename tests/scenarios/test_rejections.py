"""A request the router rejects as ambiguous is reported as what happened ("rejected: ambiguous
between shop and weather") in the reasons, the terminal, the confusion matrix, JUnit and HTML:
never as if the best candidate, which did not take it, had."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from swarm.scenarios import Metrics, ScenarioRunner, html_report, junit_xml, load_suites
from swarm.scenarios.format import AMBIGUOUS_LABEL, NONE_LABEL
from swarm.scenarios.views import ReportView

# The keyword router scores "lamp weather" a tie between shop and weather: ambiguous, rejected.
SUITE = """
name: ambiguity
agents: {pack}
router: keyword
setup: [{{fixture: seed, args: {{items: {{}}}}}}]
scenarios:
  - name: expects out of scope
    steps: [{{user: lamp weather, expect: {{out_of_scope: true}}}}]
  - name: expects the shop
    steps: [{{user: lamp weather, expect: {{agent: shop}}}}]
  - name: expects the router to pick the shop
    steps: [{{user: lamp weather, expect: {{routed_to: shop}}}}]
  - name: expects rejected
    steps: [{{user: lamp weather, expect: {{status: rejected}}}}]
"""

WHAT = "rejected: ambiguous between shop (0.50) and weather (0.50)"


def test_an_ambiguous_rejection_is_reported_as_such_everywhere(
    pack: str, write: Callable[[str, str], Path], db_url: str
) -> None:
    loaded = load_suites([write("ambiguity.yaml", SUITE.format(pack=pack))])
    report = ScenarioRunner(db=db_url).run_sync(loaded.suites)
    by_name = {s.name: s for s in report.scenarios}
    assert by_name["expects out of scope"].reasons == [
        f"step 1 ('lamp weather'): expected out of scope, got {WHAT}"
    ]
    assert by_name["expects the shop"].reasons[0] == (
        f"step 1 ('lamp weather'): expected agent shop, got {WHAT}"
    )
    assert by_name["expects the router to pick the shop"].reasons[0] == (
        f"step 1 ('lamp weather'): expected the router to pick shop, got {WHAT}"
    )
    assert by_name["expects rejected"].passed
    steps = report.steps
    assert {s.outcome for s in steps} == {WHAT}
    assert all(s.routed is None and s.actual == AMBIGUOUS_LABEL for s in steps)
    assert all(s.confidence is None for s in steps)  # no pick to judge calibration by

    m = Metrics.of(steps)
    assert m.confusion == {(NONE_LABEL, AMBIGUOUS_LABEL): 1, ("shop", AMBIGUOUS_LABEL): 2}
    assert m.correct == 0 and "took it" not in " ".join(
        r for s in report.scenarios for r in s.reasons
    )

    out = Console(file=io.StringIO(), width=200, color_system=None)
    out.print(ReportView(report))
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert f"expected out of scope, got {WHAT}" in text
    assert AMBIGUOUS_LABEL in text  # a column of the confusion table

    failures = [f.get("message") for f in ET.fromstring(junit_xml(report)).iter("failure")]
    assert f"step 1 ('lamp weather'): expected out of scope, got {WHAT}" in failures

    page = html_report(report)
    assert f"expected out of scope, got {WHAT}" in page
    assert "route: rejected: ambiguous between shop (0.50) and weather (0.50)" in page
