"""JUnit XML for CI systems: one <testsuite> per suite, one <testcase> per scenario, a <failure>
with every reason, and an <error> for each file that did not load or suite that did not run.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

from swarm.scenarios.runner import TestReport

__all__ = ["junit_xml", "write_junit"]


def junit_xml(report: TestReport) -> str:
    root = ET.Element("testsuites", name="swarm scenarios")
    total = failures = errors = 0
    stamp = dt.datetime.fromtimestamp(report.started_at).isoformat(timespec="seconds")
    for suite in report.suites:
        el = ET.SubElement(
            root,
            "testsuite",
            name=suite.name,
            file=suite.file,
            timestamp=stamp,
            time=f"{suite.duration_ms / 1000:.3f}",
        )
        props = ET.SubElement(el, "properties")
        for key, value in (
            ("router", suite.router),
            ("router_version", suite.router_version or ""),
            ("run_id", suite.run_id or ""),
        ):
            ET.SubElement(props, "property", name=key, value=value)
        n_fail = n_err = 0
        for s in suite.scenarios:
            case = ET.SubElement(
                el,
                "testcase",
                classname=suite.name,
                name=s.name,
                file=s.file,
                line=str(s.line),
                time=f"{s.duration_ms / 1000:.3f}",
            )
            if s.error is not None:
                n_err += 1
                ET.SubElement(case, "error", message=s.error, type="SuiteError").text = s.error
            elif not s.passed:
                n_fail += 1
                reasons = s.reasons
                failure = ET.SubElement(case, "failure", message=reasons[0], type="ScenarioFailed")
                failure.text = "\n".join(reasons)
        el.set("tests", str(len(suite.scenarios)))
        el.set("failures", str(n_fail))
        el.set("errors", str(n_err))
        el.set("skipped", "0")
        total, failures, errors = total + len(suite.scenarios), failures + n_fail, errors + n_err
    if report.load_errors:
        el = ET.SubElement(root, "testsuite", name="(files that did not load)", timestamp=stamp)
        for message in report.load_errors:
            where = message.split(": ", 1)[0]
            case = ET.SubElement(el, "testcase", classname="load", name=where, time="0")
            ET.SubElement(case, "error", message=message, type="ScenarioError").text = message
        n = len(report.load_errors)
        el.set("tests", str(n))
        el.set("failures", "0")
        el.set("errors", str(n))
        el.set("skipped", "0")
        total, errors = total + n, errors + n
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("time", f"{report.duration_ms / 1000:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: TestReport, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(report), encoding="utf-8")
    return path
